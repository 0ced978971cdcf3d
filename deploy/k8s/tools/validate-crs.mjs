// Validates Strimzi custom resources (a JSON array on stdin) against the schemas generated from Strimzi's
// CRDs (@kubernetes-models/strimzi-kafka-operator). Prints a JSON array of problems; exit 1 if any.
import { Kafka } from "@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1beta2/Kafka";
import { KafkaNodePool } from "@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1beta2/KafkaNodePool";
import { KafkaTopic } from "@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1beta2/KafkaTopic";

const models = { Kafka, KafkaNodePool, KafkaTopic };
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const problems = [];
for (const obj of JSON.parse(Buffer.concat(chunks).toString("utf8"))) {
  const Model = models[obj.kind];
  const name = `${obj.kind}/${obj.metadata?.name}`;
  if (!Model) {
    problems.push(`${name}: no schema for ${obj.apiVersion} ${obj.kind}`);
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (err) {
    problems.push(`${name}: ${String(err.message).replace(/\s+/g, " ").slice(0, 400)}`);
  }
}
console.log(JSON.stringify(problems));
process.exit(problems.length ? 1 : 0);
