"""Load the indicator catalog (contracts/catalog/indicators/*.yaml) and expand it into plain indicators.

Pure functions, no I/O beyond reading contracts/. Meant to be copied into libs/ioccore/catalog.py.

File format (one file per field, validated by contracts/catalog/indicator.schema.json):

    field: land                      # the field code; every indicator gets field: land
    defaults: {...}                  # optional; keys merged into every indicator and template (shallow,
                                     # the indicator's own keys win)
    indicators: [ {...}, ... ]       # plain indicators
    families:                        # optional; indicators generated from templates
      - family: land.by_purpose      # family id (informative, copied into each generated indicator)
        each: [ {key: residential, name_vi: "đất ở", name_en: "residential land", match: residential}, ... ]
        # or, instead of `each`, items taken from reference data:
        # each_from: {file: geo/focal_points.yaml, list: focal_points, key: code}
        indicators: [ {template}, ... ]

Expansion rules, in order:
1. Items: `each_product: [part, ...]` is the cross product of parts (each part an `each`/`each_from`
   with `as: <prefix>`; attributes become <prefix>_<attr>, key = part keys joined by '_').
   `each` is a list of mappings with at least key, name_vi, name_en. `each_from` reads the list
   `list` of the YAML file `file` (relative to contracts/) and uses every record as an item (only those
   whose fields equal every `where: {field: value}` condition, when given), its `key` being
   slug(record[key]) (lower-case, '-' and ' ' become '_').
2. For every item and every template of the family, the template is deep-copied and every string in it
   (values of mappings and items of lists, at any depth) is formatted with the item: `{name}` is
   replaced by str(item[name]). A string that is exactly "{name}" is replaced by item[name] itself, so
   lists and numbers keep their type (e.g. `filter: {kind: "{match}"}` with match: [a, b] gives an `in`
   condition). `{{` and `}}` stand for literal braces.
3. `defaults` of the file are merged under each plain indicator and each expanded template.
4. `field` is set to the file's field; generated indicators get `family: <family id>`.
5. Reported figures: an indicator with measure `last` (or `sum` with `reported: true`) and no `source` gets
   source {event_types: [vn.binhduong.<field>.figure.reported], filter: {indicator_id: <its own id>}} and
   value_field `value`. `reported: true` is removed after expansion.
Indicator ids are unique across the catalog; the expanded indicator validates against
#/definitions/indicator of indicator.schema.json.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

CONTRACTS = Path(__file__).resolve().parent.parent / "contracts"
_WHOLE = re.compile(r"^\{([a-zA-Z_][a-zA-Z0-9_]*)\}$")


def slug(value: Any) -> str:
    return re.sub(r"[^a-z0-9_]", "_", str(value).lower().replace("-", "_").replace(" ", "_")).strip("_")


def _subst(obj: Any, item: dict[str, Any]) -> Any:
    if isinstance(obj, str):
        m = _WHOLE.match(obj)
        if m and m.group(1) in item:
            return copy.deepcopy(item[m.group(1)])
        try:
            return obj.format_map(_Strict(item))
        except KeyError as exc:
            raise ValueError(f"template string {obj!r} names {exc} which the item lacks") from exc
    if isinstance(obj, list):
        return [_subst(x, item) for x in obj]
    if isinstance(obj, dict):
        return {k: _subst(v, item) for k, v in obj.items()}
    return obj


class _Strict(dict):
    def __missing__(self, key: str) -> Any:
        raise KeyError(key)


def family_items(family: dict[str, Any], contracts_dir: Path = CONTRACTS) -> list[dict[str, Any]]:
    if "each_product" in family:
        # cross product of several item lists; each part names itself with `as`, its attributes become
        # <as>_<attribute> and the item key is the parts' keys joined by '_'.
        items: list[dict[str, Any]] = [{}]
        for part in family["each_product"]:
            prefix = part["as"]
            new = []
            for base in items:
                for it in family_items(part, contracts_dir):
                    merged = dict(base)
                    merged.update({f"{prefix}_{k}": v for k, v in it.items()})
                    merged["key"] = f"{base['key']}_{it['key']}" if "key" in base else it["key"]
                    new.append(merged)
            items = new
        return items
    if "each" in family:
        return list(family["each"])
    spec = family["each_from"]
    doc = yaml.safe_load((contracts_dir / spec["file"]).read_text(encoding="utf-8"))
    items = []
    where = spec.get("where") or {}
    for rec in doc[spec["list"]]:
        if any(rec.get(k) != v for k, v in where.items()):
            continue
        item = dict(rec)
        item["key"] = slug(rec[spec["key"]])
        items.append(item)
    return items


def _finish(ind: dict[str, Any], field: str, defaults: dict[str, Any]) -> dict[str, Any]:
    out = {**copy.deepcopy(defaults), **ind}
    out["field"] = field
    reported = out.pop("reported", False)
    if "source" not in out and (out.get("measure") == "last" or (reported and out.get("measure") == "sum")):
        out["source"] = {
            "event_types": [f"vn.binhduong.{field}.figure.reported"],
            "filter": {"indicator_id": out["id"]},
        }
        out.setdefault("value_field", "value")
    return out


def expand_file(doc: dict[str, Any], contracts_dir: Path = CONTRACTS) -> list[dict[str, Any]]:
    field = doc["field"]
    defaults = doc.get("defaults", {}) or {}
    out = [_finish(ind, field, defaults) for ind in doc.get("indicators", []) or []]
    for fam in doc.get("families", []) or []:
        for item in family_items(fam, contracts_dir):
            for tpl in fam["indicators"]:
                ind = _subst(copy.deepcopy(tpl), item)
                ind["family"] = fam["family"]
                out.append(_finish(ind, field, defaults))
    return out


def load_indicator_files(contracts_dir: Path = CONTRACTS) -> dict[str, dict[str, Any]]:
    files = {}
    for path in sorted((contracts_dir / "catalog" / "indicators").glob("*.yaml")):
        files[path.stem] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return files


def load_indicators(contracts_dir: Path = CONTRACTS) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for doc in load_indicator_files(contracts_dir).values():
        out.extend(expand_file(doc, contracts_dir))
    return out


def expand_boards(doc: dict[str, Any], contracts_dir: Path = CONTRACTS) -> list[dict[str, Any]]:
    """Boards: plain `boards` plus `templates`, each expanded per item of its `each`/`each_from`
    with the same substitution rule as indicator families (see contracts/catalog/boards.yaml)."""
    out = [copy.deepcopy(b) for b in doc.get("boards", []) or []]
    for tpl in doc.get("templates", []) or []:
        for item in family_items(tpl, contracts_dir):
            board = _subst(copy.deepcopy(tpl["board"]), item)
            board["template"] = tpl["template"]
            out.append(board)
    return out


def load_boards(contracts_dir: Path = CONTRACTS) -> list[dict[str, Any]]:
    doc = yaml.safe_load((contracts_dir / "catalog" / "boards.yaml").read_text(encoding="utf-8"))
    return expand_boards(doc, contracts_dir)


def board_indicator_ids(board: dict[str, Any], indicators: list[dict[str, Any]]) -> list[str]:
    """The indicator ids a board shows: its explicit `indicators`, then (if `select` is given) every
    indicator matching it, in catalog order, without repeats. select: {field: <code>,
    fields: [codes], families: false|true (default false: plain indicators only), scope:
    <commune|district|province> (only indicators available at that scope), with_reference: true (only
    indicators with a target or baseline)}."""
    out = list(board.get("indicators", []))
    sel = board.get("select")
    if sel:
        for ind in indicators:
            if "field" in sel and ind["field"] != sel["field"]:
                continue
            if "fields" in sel and ind["field"] not in sel["fields"]:
                continue
            if sel.get("with_reference") and not any(
                k in ind for k in ("target", "baseline", "targets_by_scope")
            ):
                continue
            if not sel.get("families", False) and "family" in ind:
                continue
            if "scope" in sel and sel["scope"] not in ind["scopes"]:
                continue
            if ind["id"] not in out:
                out.append(ind["id"])
    return out
