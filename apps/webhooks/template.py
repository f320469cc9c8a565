"""``template_body`` placeholders: ``<{field}>`` names an event field; rendering is plain substitution."""

import re

PLACEHOLDER = re.compile(r"<\{([^{}<>]*)\}>")


def placeholder_names(template_body: str) -> list[str]:
    """The field names the template uses, in order of first appearance."""
    return list(dict.fromkeys(name.strip() for name in PLACEHOLDER.findall(template_body)))
