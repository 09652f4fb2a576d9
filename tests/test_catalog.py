"""Departments, the item catalogue and the policies, as ops and clerks see them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from engine.cli import main
from tests.api_support import ApiHarness

ROOT = Path(__file__).resolve().parent.parent


def cli(url: str, *args: str) -> CliRunner:
    return CliRunner().invoke(main, ["--db", url, *args])


def test_a_fresh_database_lists_departments_and_the_catalogue(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    departments = json.loads(cli(url, "departments", "list", "--json").stdout)
    codes = {d["code"] for d in departments}
    assert len(codes) >= 25 and {"center", "amr", "tax", "hrss", "leading"} <= codes
    items = json.loads(cli(url, "catalog", "list", "--json").stdout)
    per_department = Counter(i["department"] for i in items)
    windowed = codes - {"leading"}  # the leading group has no counter
    assert all(per_department[code] >= 3 for code in windowed), per_department
    licence = next(i for i in items if i["code"] == "amr-05")
    assert (licence["promised_workdays"], licence["approval_levels"]) == (10, 2)
    assert licence["certificate"] == "食品经营许可证"
    assert licence["required_materials"] and licence["optional_materials"]
    text = cli(url, "catalog", "list", "--kind", "item", "--dept", "tax").stdout.splitlines()
    assert text and all("\ttax\t" in line for line in text)
    assert cli(url, "lint", str(ROOT / "processes")).exit_code == 0


def test_a_catalogue_file_with_bad_rows_changes_nothing(database_url, app, tmp_path):
    header = (ROOT / "processes/catalog/items.tsv").read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "items.tsv"
    path.write_text(
        "\n".join(
            [
                header,
                "amr-01\t企业设立登记\tamr\t2\t1\t营业执照\t0\t申请表\t\t",
                "amr-99\t新事项\tamr\tsoon\t1\t\t0\t申请表\t\t",
                "amr-98\t新事项\tnowhere\t3\t3\t\t0\t申请表\t\t",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    result = cli(database_url, "catalog", "import", str(path))
    assert result.exit_code == 1
    assert f"{path}:3: promised_workdays, approval_levels and fee_amount must be numbers" in (
        result.stderr
    )
    assert f"{path}:4: promised_workdays must be >= 1, approval_levels 1 or 2" in result.stderr
    assert app.services.catalog.item("amr-01")["promised_workdays"] == 3  # unchanged


def test_ops_change_an_item_and_a_policy_clerks_only_read(app):
    api = ApiHarness(app)
    api.user("ops", ["ops"])
    api.user("clerk", ["clerk"], ["amr"])
    listed = api.get("/api/catalog", "clerk", params={"department": "amr"}).json()
    assert {i["department"] for i in listed} == {"amr"} and len(listed) >= 3
    item = api.get("/api/catalog/amr-01", "clerk").json()
    item.pop("kind")
    item["promised_workdays"] = 2
    assert (
        api.client.put("/api/catalog/amr-01", json=item, headers=api.headers("clerk")).status_code
        == 403
    )
    response = api.client.put("/api/catalog/amr-01", json=item, headers=api.headers("ops"))
    assert response.status_code == 200, response.text
    assert app.services.catalog.item("amr-01")["promised_workdays"] == 2
    item["code"] = "amr-02"
    response = api.client.put("/api/catalog/amr-01", json=item, headers=api.headers("ops"))
    assert response.status_code == 422
    assert response.json()["details"][0]["path"] == "code"

    response = api.client.put(
        "/api/policies/rating_default_workdays", json={"value": 0}, headers=api.headers("ops")
    )
    assert response.status_code == 422
    assert "1 to 60" in response.json()["message"]
    response = api.client.put(
        "/api/policies/rating_default_workdays", json={"value": 7}, headers=api.headers("ops")
    )
    assert response.status_code == 200
    assert api.get("/api/policies", "clerk").json()["rating_default_workdays"] == 7
    assert app.services.catalog.policy("rating_default_workdays") == 7
