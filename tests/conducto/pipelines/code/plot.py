print("<ConductoMarkdown>")
print("| month | sales |\n|---|---|\n| Jan | 3 |")
print("</ConductoMarkdown>")
