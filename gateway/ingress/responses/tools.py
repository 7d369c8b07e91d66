"""Responses tools and tool_choice -> their Chat Completions forms.

Function tools translate; built-in tools (web search, file search, computer use …) exist
only where the deployment speaks Responses natively, so elsewhere they are a 400 that
names the tool.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequest
from gateway.ingress.responses.ids import shown

CHOICE_WORDS = frozenset({"auto", "none", "required"})


def translate_tools(tools: Any, *, native: bool) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array.", param="tools")
    translated = []
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            translated.append(_function(tool, f"tools[{index}]"))
        elif not native:
            raise InvalidRequest(
                f"The tool {shown(kind)} is only available on deployments that speak the "
                "Responses API natively; this model supports function tools only.",
                param=f"tools[{index}].type",
            )
    return translated


def _function(tool: dict[str, Any], param: str) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"'{param}.name' must be a non-empty string.", param=f"{param}.name")
    function: dict[str, Any] = {"name": name}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    parameters = tool.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise InvalidRequest(
                f"'{param}.parameters' must be an object.", param=f"{param}.parameters"
            )
        function["parameters"] = parameters
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def translate_tool_choice(choice: Any) -> Any:
    if isinstance(choice, str) and choice in CHOICE_WORDS:
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = choice.get("name")
        if isinstance(name, str) and name:
            return {"type": "function", "function": {"name": name}}
    raise InvalidRequest(
        "'tool_choice' must be 'auto', 'none', 'required' or {'type': 'function', 'name': …}.",
        param="tool_choice",
    )
