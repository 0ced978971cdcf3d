"""Write the first version of contracts/rules/<field>.yaml (27 files) from the catalog and the simulator's
traffic model. Run once by hand (`.venv/bin/python scripts/gen_rules.py`); the files are data from then on and
are edited as data (the alerts service never generates rules at run time).

Per field:
- a `target` rule for every plain indicator with a target from DOMAIN.md (not for generated families);
- a volume rule (`above`, with a clear threshold) on the field's busiest unfiltered daily count per district:
  threshold 2x and clear 1.5x the district's normal daily volume in the traffic model, plus 5 (the busiest
  district's as the default, the others' as per-unit overrides);
- a spike rule (`change` versus the previous day, up, +200%) on the same indicator, info only;
- `no_data` rules for up to three reported figures (a department did not report by the deadline).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "libs"), str(ROOT)]

from ioccore.catalog import load_catalog  # noqa: E402
from iocsim.reference import load_reference  # noqa: E402

GRACE = {"day": 1, "week": 2, "month": 10, "quarter": 20, "year": 45}
CADENCE_ORDER = ["day", "week", "month", "quarter", "year"]

SOP_TARGET = (
    "1. Kiểm tra số liệu {name} của {{unit}} kỳ {{period}} trên bảng điều hành và đối chiếu với báo cáo của {dept}.\n"
    "2. Liên hệ đầu mối của {dept} để xác định nguyên nhân chưa đạt chỉ tiêu.\n"
    "3. Ghi nhận nguyên nhân và biện pháp khắc phục vào phần ghi chú của cảnh báo; giao cho cán bộ phụ trách.\n"
    "4. Báo cáo lãnh đạo nếu chỉ tiêu chưa đạt trong kỳ tiếp theo."
)
SOP_VOLUME = (
    "1. Xem chi tiết {name} theo xã, phường trên bảng điều hành để khoanh vùng nơi tăng đột biến.\n"
    "2. Gọi đầu mối của {dept} tại địa bàn xác minh tình hình thực tế (sự cố, sự kiện, lỗi số liệu).\n"
    "3. Nếu là sự cố thật: xác nhận cảnh báo, giao cán bộ xử lý, cập nhật diễn biến vào ghi chú.\n"
    "4. Nếu là lỗi số liệu: ghi chú nguyên nhân và báo Trung tâm IOC tỉnh để kiểm tra nguồn dữ liệu."
)
SOP_NO_DATA = (
    "1. Kiểm tra trên hệ thống LGSP xem {dept} đã gửi số liệu {name} kỳ {{period}} chưa.\n"
    "2. Nhắc đầu mối báo cáo của {dept} gửi số liệu, ghi nhận thời hạn cam kết vào ghi chú.\n"
    "3. Quá hạn cam kết: báo cáo lãnh đạo Sở Thông tin và Truyền thông."
)


def main() -> None:
    catalog = load_catalog(ROOT / "contracts")
    ref = load_reference(ROOT / "contracts")
    dw = ref.district_weights()
    share = max(dw.values()) / sum(dw.values())
    fields = {f.code: f for f in catalog.fields}
    out_dir = ROOT / "contracts" / "rules"
    for code, fld in fields.items():
        dept = fld.departments[0] if fld.departments else fld.name_vi
        inds = [i for i in catalog.indicators if i.field == code]
        rules: list[dict] = []
        for i in inds:
            if i.family or not (i.target or i.targets_by_scope):
                continue
            cadence = next(c for c in CADENCE_ORDER[2:] + CADENCE_ORDER[:2] if c in i.cadences)
            levels = [s for s in ("district", "province") if s in i.scopes] or list(i.scopes)
            rules.append(
                {
                    "id": f"{i.id}.below_target" if i.id.startswith(code + ".") else f"{code}.{i.id}",
                    "indicator": i.id,
                    "levels": levels,
                    "cadence": cadence,
                    "condition": {"kind": "target", "clear_margin": 0},
                    "for": {"windows": 1},
                    "severity": "warning",
                    "routing": {"escalate_after_min": 240},
                    "title_vi": f"{i.name_vi} chưa đạt chỉ tiêu",
                    "title_en": f"{i.name_en} below target",
                    "sop_vi": SOP_TARGET.format(name=i.name_vi.lower(), dept=dept),
                }
            )
        best = None
        for i in inds:
            if i.measure != "count" or i.family or not i.source or i.source.filter:
                continue
            if "district" not in i.scopes or "day" not in i.cadences or i.direction == "higher_is_better":
                continue
            per_day = sum(
                float((ref.model["types"].get(t.removeprefix("vn.binhduong.")) or {}).get("per_day", 0))
                for t in i.source.event_types
            )
            if per_day >= 5 and (best is None or per_day > best[1]):
                best = (i, per_day)
        if best:
            i, per_day = best
            normal = per_day * share
            overrides = {
                d: {
                    "threshold": math.ceil(per_day * w / sum(dw.values()) * 2 + 5),
                    "clear": math.ceil(per_day * w / sum(dw.values()) * 1.5 + 3),
                }
                for d, w in sorted(dw.items())
                if w < max(dw.values())
            }
            rules.append(
                {
                    "id": f"{code}.volume_high",
                    "indicator": i.id,
                    "levels": ["district"],
                    "cadence": "day",
                    "condition": {
                        "kind": "above",
                        "threshold": math.ceil(normal * 2 + 5),
                        "clear": math.ceil(normal * 1.5 + 3),
                    },
                    "overrides": overrides,
                    "for": {"windows": 1},
                    "severity": "critical",
                    "routing": {"escalate_after_min": 15, "flap_window_min": 120},
                    "title_vi": f"{i.name_vi} tăng bất thường",
                    "title_en": f"{i.name_en} abnormally high",
                    "sop_vi": SOP_VOLUME.format(name=i.name_vi.lower(), dept=dept),
                }
            )
            rules.append(
                {
                    "id": f"{code}.volume_spike",
                    "indicator": i.id,
                    "levels": ["district"],
                    "cadence": "day",
                    "condition": {"kind": "change", "direction": "up", "threshold": 200, "clear": 100},
                    "for": {"windows": 1},
                    "severity": "info",
                    "routing": {"escalate_after_min": 120},
                    "title_vi": f"{i.name_vi} tăng trên 200% so với ngày trước",
                    "title_en": f"{i.name_en} up more than 200% on the previous day",
                    "sop_vi": SOP_VOLUME.format(name=i.name_vi.lower(), dept=dept),
                }
            )
        reported = [i for i in inds if i.is_reported and not i.family][:3]
        for n, i in enumerate(reported):
            cadence = next(c for c in CADENCE_ORDER if c in i.cadences)
            rules.append(
                {
                    "id": f"{i.id}.not_reported" if i.id.startswith(code + ".") else f"{code}.{i.id}",
                    "indicator": i.id,
                    "levels": [next(s for s in ("province", "district", "commune") if s in i.scopes)],
                    "cadence": cadence,
                    "condition": {"kind": "no_data", "grace_days": GRACE[cadence]},
                    "for": {"windows": 1},
                    "severity": "warning" if n == 0 else "info",
                    "routing": {"escalate_after_min": 1440},
                    "title_vi": f"Chưa nhận số liệu {i.name_vi.lower()} đúng hạn",
                    "title_en": f"{i.name_en} not reported on time",
                    "sop_vi": SOP_NO_DATA.format(name=i.name_vi.lower(), dept=dept),
                }
            )
        header = (
            f"# Luật cảnh báo lĩnh vực {fld.name_vi} / alert rules of the field {fld.name_en}.\n"
            "# Data (contracts/rules/rule.schema.json), checked by `ioc catalog check`; first written by\n"
            "# scripts/gen_rules.py from the catalog targets and the simulator's volumes, edited as data since.\n"
        )
        body = yaml.safe_dump({"field": code, "rules": rules}, allow_unicode=True, sort_keys=False, width=200)
        (out_dir / f"{code}.yaml").write_text(header + body, encoding="utf-8")
        print(f"{code}: {len(rules)} rules")


if __name__ == "__main__":
    main()
