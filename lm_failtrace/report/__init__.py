"""Reports for people: terminal tables, PNG figures and the self-contained HTML report."""
