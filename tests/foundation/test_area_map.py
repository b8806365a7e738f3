"""Checks on the SVG area map: structure, fills, escaping, locale and links."""

from __future__ import annotations

from lxml import etree

from foundation.areas.svg_map import DEFAULT_FILL, render_svg
from warncast.demo_city import demo_areas

NS = {"svg": "http://www.w3.org/2000/svg"}
HOSTILE = "<script>alert(1)</script>\"'&"


def _square(lat: float, lon: float, size: float = 0.01) -> list[list[float]]:
    return [
        [lat, lon],
        [lat, lon + size],
        [lat + size, lon + size],
        [lat + size, lon],
        [lat, lon],
    ]


def _tiny_registry() -> list[dict]:
    """One district with two communities, one of them with a hostile name."""
    return [
        {
            "code": "990101",
            "level": "district",
            "parent": None,
            "name": {"zh-CN": "测试区", "en": HOSTILE},
            "polygon": _square(30.0, 120.0, 0.02),
        },
        {
            "code": "990101001001",
            "level": "community",
            "parent": "990101001",
            "name": {"zh-CN": "甲社区", "en": HOSTILE},
            "polygon": _square(30.0, 120.0),
        },
        {
            "code": "990101001002",
            "level": "community",
            "parent": "990101001",
            "name": {"zh-CN": "乙社区", "en": "Plain Community"},
            "polygon": _square(30.0, 120.01),
        },
    ]


def _parse(svg: str) -> etree._Element:
    return etree.fromstring(svg.encode("utf-8"))


def _community_paths(root: etree._Element) -> dict[str, etree._Element]:
    return {p.get("data-code"): p for p in root.iterfind(".//svg:path[@fill]", NS) if p.get("fill") != "none"}


def test_root_is_an_accessible_responsive_svg() -> None:
    root = _parse(render_svg(demo_areas(), {}, title="Lanjiang warnings"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Lanjiang warnings"
    assert root.get("width") == "100%"
    assert root.get("height") is None
    x, y, width, height = (float(v) for v in root.get("viewBox").split())
    assert (x, y) == (0, 0) and 900 <= width <= 1100 and height > 0


def test_one_path_per_community_with_code_and_title() -> None:
    areas = demo_areas()
    communities = {a["code"]: a for a in areas if a["level"] == "community"}
    paths = _community_paths(_parse(render_svg(areas, {})))
    assert set(paths) == set(communities)
    for code, path in paths.items():
        assert path.findtext("svg:title", namespaces=NS) == communities[code]["name"]["en"]
        assert path.get("d").startswith("M") and path.get("d").endswith("Z")


def test_district_outlines_and_labels() -> None:
    areas = demo_areas()
    districts = [a for a in areas if a["level"] == "district"]
    root = _parse(render_svg(areas, {}))
    outlines = root.findall(".//svg:g[@fill='none']/svg:path", NS)
    assert sorted(p.get("data-code") for p in outlines) == sorted(a["code"] for a in districts)
    labels = [t.text for t in root.iterfind(".//svg:text", NS)]
    assert sorted(labels) == sorted(a["name"]["en"] for a in districts)
    assert root.find(".//svg:g[@paint-order='stroke']", NS) is not None


def test_fills_are_applied_by_community_code() -> None:
    areas = demo_areas()
    codes = [a["code"] for a in areas if a["level"] == "community"]
    fills = {codes[0]: "#ef4444", codes[5]: "orange", "990101": "#0000ff"}
    paths = _community_paths(_parse(render_svg(areas, fills)))
    assert paths[codes[0]].get("fill") == "#ef4444"
    assert paths[codes[5]].get("fill") == "orange"
    # District-level entries are not resolved here; the caller does that.
    others = [paths[c].get("fill") for c in codes if c not in fills]
    assert others and set(others) == {DEFAULT_FILL}


def test_hostile_names_and_values_are_escaped() -> None:
    svg = render_svg(
        _tiny_registry(),
        {"990101001001": 'red" onload="alert(1)'},
        title=HOSTILE,
        href=lambda area: f'/areas/{area["code"]}?a=1&b="x"',
    )
    assert "<script>" not in svg
    assert 'onload="' not in svg
    root = _parse(svg)
    assert root.get("aria-label") == HOSTILE
    assert root.find("svg:title", NS).text == HOSTILE
    paths = _community_paths(root)
    assert paths["990101001001"].findtext("svg:title", namespaces=NS) == HOSTILE
    assert paths["990101001001"].get("fill") == 'red" onload="alert(1)'
    assert [t.text for t in root.iterfind(".//svg:text", NS)] == [HOSTILE]
    assert root.find(".//svg:a", NS).get("href") == '/areas/990101001001?a=1&b="x"'
    assert not root.findall(".//svg:script", NS)
    assert not [name for el in root.iter() for name in el.attrib if name.startswith("on")]


def test_control_characters_do_not_break_the_xml() -> None:
    registry = _tiny_registry()
    registry[1]["name"]["en"] = "Bell\x07 Community"
    root = _parse(render_svg(registry, {}))
    assert _community_paths(root)["990101001001"].findtext("svg:title", namespaces=NS) == ("Bell Community")


def test_locale_selects_title_language() -> None:
    for locale in ("zh-CN", "zh_Hans", "zh", "zh-Hans"):
        paths = _community_paths(_parse(render_svg(_tiny_registry(), {}, locale=locale)))
        assert paths["990101001002"].findtext("svg:title", namespaces=NS) == "乙社区", locale
    paths = _community_paths(_parse(render_svg(_tiny_registry(), {}, locale="en")))
    assert paths["990101001002"].findtext("svg:title", namespaces=NS) == "Plain Community"
    # Unknown locales fall back to English.
    paths = _community_paths(_parse(render_svg(_tiny_registry(), {}, locale="fr")))
    assert paths["990101001002"].findtext("svg:title", namespaces=NS) == "Plain Community"


def test_href_wraps_paths_in_links() -> None:
    def link(area: dict) -> str | None:
        return f"/areas/{area['code']}" if area["code"].endswith("1") else None

    root = _parse(render_svg(_tiny_registry(), {}, href=link))
    anchors = root.findall(".//svg:a", NS)
    assert [a.get("href") for a in anchors] == ["/areas/990101001001"]
    assert anchors[0].find("svg:path", NS).get("data-code") == "990101001001"
    unlinked = _community_paths(root)["990101001002"]
    assert unlinked.getparent().tag != "{http://www.w3.org/2000/svg}a"


def test_unsafe_link_schemes_are_dropped() -> None:
    for url in ("javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "java\tscript:x"):
        root = _parse(render_svg(_tiny_registry(), {}, href=lambda area, u=url: u))
        assert not root.findall(".//svg:a", NS), url
    root = _parse(render_svg(_tiny_registry(), {}, href=lambda area: "https://example.org/a"))
    assert len(root.findall(".//svg:a", NS)) == 2


def test_north_is_up_and_coordinates_have_one_decimal() -> None:
    registry = _tiny_registry()
    paths = _community_paths(_parse(render_svg(registry, {})))
    # Both squares share latitudes; the west one must be drawn left of the east one.
    west = paths["990101001001"].get("d")
    east = paths["990101001002"].get("d")
    numbers = [n for d in (west, east) for n in d.strip("MZ").replace("L", ",").split(",")]
    assert all(len(n.split(".")[1]) == 1 for n in numbers)
    west_x = float(west[1:].split(",")[0])
    east_x = float(east[1:].split(",")[0])
    assert west_x < east_x
    # The first vertex is the south-west corner: larger y (lower) than the north edge.
    first_y = float(west[1:].split(",")[1].split("L")[0])
    north_y = float(west.split("L")[2].split(",")[1])
    assert first_y > north_y


def test_empty_registry_still_renders() -> None:
    root = _parse(render_svg([], {}))
    assert root.get("role") == "img"
    assert not _community_paths(root)
