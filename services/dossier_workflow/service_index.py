"""Points per criterion of the service index (Bộ chỉ số phục vụ người dân, doanh nghiệp, Decision 766/QĐ-TTg).

The criteria and their maximum points (transparency 18, progress 20, digitisation 22, online service 22,
satisfaction 18: 100) are from the decision (`../shared/reference/procedures.md`, and a summary of the decision
that also gives 4/18 for procedures published on time, 6/18 for satisfaction with reception and resolution, up
to 20 for dossiers resolved on time). The split of the other points among indicators and the linear scoring
(points = weight x share) are NOT confirmed: the decision scores several indicators against the targets of
Resolution 76/NQ-CP, whose thresholds the reference does not give. Both are data here (CRITERIA), to be replaced
when the appendix is checked; the test only requires each criterion's weights to add up to its maximum.

An indicator whose figure the system does not record (`figure` None), or whose figure has no denominator in the
period (a share that is null), scores null and is left out of `known_max_points`; a criterion with no known
indicator scores null.
"""

from __future__ import annotations

from typing import Any

CRITERIA: tuple[dict[str, Any], ...] = (
    {"code": "transparency", "name": "Công khai, minh bạch / transparency", "max_points": 18, "indicators": (
        {"code": "procedures_published_on_time", "figure": None, "weight": 4,
         "name": "TTHC được cập nhật, công khai đúng hạn / procedures published on time (catalog publication "
                 "dates are not recorded)"},
        {"code": "dossiers_synced", "figure": "share_synced", "weight": 7,
         "name": "Hồ sơ đồng bộ lên Cổng DVCQG / dossiers published on the national portal"},
        {"code": "dossiers_synced_on_time", "figure": "share_synced_on_time", "weight": 7,
         "name": "Hồ sơ đồng bộ kịp thời / dossiers published within the sync time"},
    )},
    {"code": "progress", "name": "Tiến độ, kết quả giải quyết / progress and results", "max_points": 20,
     "indicators": (
        {"code": "resolved_on_time", "figure": "on_time_rate", "weight": 20,
         "name": "Hồ sơ giải quyết trước hạn, đúng hạn / dossiers resolved early or on time"},
    )},
    {"code": "digitisation", "name": "Số hóa hồ sơ / digitisation", "max_points": 22, "indicators": (
        {"code": "electronic_results", "figure": "share_electronic_result", "weight": 8,
         "name": "Kết quả giải quyết điện tử / results issued electronically"},
        {"code": "dossiers_digitised", "figure": "digitisation_rate", "weight": 8,
         "name": "Hồ sơ được số hóa / dossiers digitised"},
        {"code": "digitised_data_reused", "figure": None, "weight": 6,
         "name": "Khai thác, sử dụng lại dữ liệu số hóa / digitised data reused (not recorded)"},
    )},
    {"code": "online", "name": "Cung cấp dịch vụ trực tuyến / online service", "max_points": 22, "indicators": (
        {"code": "procedures_online", "figure": "share_procedures_online", "weight": 6,
         "name": "TTHC cung cấp dịch vụ công trực tuyến / procedures offered online (full or partial)"},
        {"code": "dossiers_online", "figure": "share_online", "weight": 10,
         "name": "Hồ sơ tiếp nhận trực tuyến / dossiers received online"},
        {"code": "online_payment", "figure": "share_online_payment", "weight": 6,
         "name": "Thanh toán trực tuyến / online payment (no payment data yet)"},
    )},
    {"code": "satisfaction", "name": "Mức độ hài lòng / satisfaction", "max_points": 18, "indicators": (
        {"code": "satisfied_reception_resolution", "figure": "satisfaction_rate", "weight": 6,
         "name": "Hài lòng trong tiếp nhận, giải quyết TTHC / satisfied with reception and resolution"},
        {"code": "other_satisfaction", "figure": None, "weight": 12,
         "name": "Các chỉ tiêu hài lòng khác / the criterion's other indicators (not recorded)"},
    )},
)


def _indicator(spec: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    value = row.get(spec["figure"]) if spec["figure"] else None
    points = round(spec["weight"] * min(max(value, 0.0), 1.0), 2) if value is not None else None
    return {"code": spec["code"], "name": spec["name"], "figure": spec["figure"], "weight": spec["weight"],
            "value": value, "points": points}


def criteria(row: dict[str, Any]) -> list[dict[str, Any]]:
    """Each criterion's points from the row's figures (see the module's docstring)."""
    out = []
    for spec in CRITERIA:
        indicators = [_indicator(i, row) for i in spec["indicators"]]
        known = [i for i in indicators if i["points"] is not None]
        out.append({"code": spec["code"], "name": spec["name"], "max_points": spec["max_points"],
                    "points": round(sum(i["points"] for i in known), 2) if known else None,
                    "known_max_points": sum(i["weight"] for i in known), "indicators": indicators})
    return out


def index_points(parts: list[dict[str, Any]]) -> tuple[float | None, int]:
    """The points of the criteria the system knows, and the most they could reach."""
    known = [c for c in parts if c["points"] is not None]
    return (round(sum(c["points"] for c in known), 2) if known else None), sum(c["known_max_points"] for c in known)
