"""The combined form (一表申请) of a "one thing" bundle, generated from the catalogue.

A bundle lists field keys (`form_fields`); each key has one JSON Schema definition here, so the
same field looks and validates the same in every bundle. The generated schema is an ordinary
form schema: the API serves it, pages render it, and submissions are checked by the same
validator as every task form.
"""

from __future__ import annotations

from typing import Any

ID_NUMBER = r"^[1-9][0-9]{16}[0-9Xx]$"
CREDIT_CODE = r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"


def _text(title: str, example: str, max_length: int = 200) -> dict[str, Any]:
    return {
        "type": "string",
        "title": title,
        "minLength": 1,
        "maxLength": max_length,
        "examples": [example],
    }


def _id(title: str, example: str = "11010519491231002X") -> dict[str, Any]:
    return {"type": "string", "title": title, "pattern": ID_NUMBER, "examples": [example]}


FIELDS: dict[str, dict[str, Any]] = {
    "applicant_name": _text("申请人（经办人）", "张三", 100),
    "id_number": _id("身份证号码"),
    "phone": {
        "type": "string",
        "title": "联系电话",
        "pattern": r"^1[3-9][0-9]{9}$",
        "examples": ["13800138000"],
    },
    "address": _text("住所（地址）", "城关镇人民路1号"),
    "company_name": _text("企业名称", "某某餐饮管理有限公司"),
    "credit_code": {
        "type": "string",
        "title": "统一社会信用代码",
        "pattern": CREDIT_CODE,
        "examples": ["91350100M000100Y43"],
    },
    "legal_rep_name": _text("法定代表人", "李四", 100),
    "legal_rep_id": _id("法定代表人身份证号码"),
    "business_scope": _text("经营范围", "餐饮服务；食品销售", 1000),
    "registered_capital": {
        "type": "number",
        "title": "注册资本（万元）",
        "minimum": 0,
        "maximum": 10_000_000,
        "examples": [50],
    },
    "employee_count": {
        "type": "integer",
        "title": "参保员工人数",
        "minimum": 0,
        "maximum": 100_000,
        "examples": [5],
    },
    "bank_name": _text("开户银行", "县农村商业银行", 100),
    "reason": _text("注销原因", "经营期满", 500),
    "cancel_route": {
        "type": "string",
        "title": "注销方式",
        "enum": ["simple", "general"],
        "examples": ["simple"],
    },
    "project_name": _text("项目名称", "城东安置房项目"),
    "property_address": _text("不动产坐落", "城关镇幸福小区3栋201"),
    "property_cert_no": _text("不动产权证书号", "赣（2024）某县不动产权第0001234号", 100),
    "buyer_name": _text("买受人", "王五", 100),
    "buyer_id": _id("买受人身份证号码", "110105194912310029"),
    "seller_name": _text("出卖人", "赵六", 100),
    "seller_id": _id("出卖人身份证号码", "110105194912310037"),
    "utilities": {
        "type": "array",
        "title": "联动过户",
        "items": {"type": "string", "enum": ["power", "watersupply", "gas", "telecom"]},
        "uniqueItems": True,
        "examples": [["power", "watersupply", "gas", "telecom"]],
    },
    "baby_name": _text("新生儿姓名", "张小宝", 50),
    "birth_date": {
        "type": "string",
        "title": "出生日期",
        "format": "date",
        "examples": ["2026-10-20"],
    },
    "hospital": _text("助产机构", "县人民医院"),
    "mother_id": _id("母亲身份证号码", "110105199001010028"),
    "father_id": _id("父亲身份证号码", "110105198901010016"),
    "retire_date": {
        "type": "string",
        "title": "退休日期",
        "format": "date",
        "examples": ["2026-12-01"],
    },
    "bank_card": {
        "type": "string",
        "title": "银行I类账户",
        "pattern": r"^[0-9]{12,19}$",
        "examples": ["6217000000000000000"],
    },
    "shop_name": _text("店铺名称", "老街面馆"),
    "area_m2": {
        "type": "number",
        "title": "经营面积（平方米）",
        "exclusiveMinimum": 0,
        "maximum": 100_000,
        "examples": [80],
    },
    "sells_tobacco": {"type": "boolean", "title": "兼营卷烟零售", "examples": [True]},
    "signage": {"type": "boolean", "title": "设置户外招牌", "examples": [True]},
}


def unknown_fields(keys: list[str]) -> list[str]:
    return [k for k in keys if k not in FIELDS]


def schema_for(item: dict[str, Any]) -> dict[str, Any]:
    """The combined form of a bundle: every listed field required, nothing else accepted."""
    keys = list(item.get("form_fields") or [])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{item['name']}一件事 · 一表申请",
        "type": "object",
        "properties": {key: FIELDS[key] for key in keys},
        "required": keys,
        "additionalProperties": False,
    }


def example_for(item: dict[str, Any]) -> dict[str, Any]:
    """A valid application, from the fields' examples (demo data and tests)."""
    return {key: FIELDS[key]["examples"][0] for key in item.get("form_fields") or []}
