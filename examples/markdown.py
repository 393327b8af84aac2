"""
### Markdown in a node's output
Wrap output in `<ConductoMarkdown>...</ConductoMarkdown>` and `k8sco logs` shows it
rendered on a terminal (headings, tables, emphasis); piped or redirected, it stays text.
Useful for tables, summaries and links that a plain log buries.
"""

from __future__ import annotations

import k8sco as co


def results_table(suites: list[str], failures: int = 0) -> None:
    """A test report as a Markdown table (a native function: typed arguments)."""
    rows = [f"| {name} | {'FAILED' if i < failures else 'OK'} |" for i, name in enumerate(suites)]
    print(f"ran {len(suites)} suites")
    print("<ConductoMarkdown>")
    print("### Test results\n\n| suite | result |\n|---|---|")
    print("\n".join(rows))
    print("</ConductoMarkdown>")


SHELL_MARKDOWN = """
echo "build finished"
echo "<ConductoMarkdown>"
echo "**Build** took _42_ seconds: [the log](https://example.com/build/42)"
echo "</ConductoMarkdown>"
"""


def markdown() -> co.Serial:
    with co.Serial(doc=__doc__) as root:
        co.Exec(SHELL_MARKDOWN, name="shell")
        root["table"] = co.Exec(results_table, ["unit", "integration", "docs"], failures=1)
        root["table"].doc = co.util.magic_doc(func=results_table, doc_only=True)
    return root


if __name__ == "__main__":
    co.main(default=markdown)
