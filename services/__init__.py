"""The IOC's services. Each talks to the others only through Kafka topics and ClickHouse tables."""
