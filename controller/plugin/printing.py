"""`-o json` and `-o yaml` (pure): documents printed as kubectl prints objects (JSON
indented by four spaces; YAML in block style, keys in the API's order). Used by
`controller.plugin.cli`."""

from __future__ import annotations

import json
from typing import Any

import yaml

FORMATS = ("json", "yaml")


def dumped(document: Any, output: str) -> str:
    if output == "json":
        return json.dumps(document, indent=4, ensure_ascii=False) + "\n"
    if output == "yaml":
        text: str = yaml.safe_dump(
            document, sort_keys=False, default_flow_style=False, allow_unicode=True
        )
        return text
    raise ValueError(f"output format {output!r} is none of {', '.join(FORMATS)}")
