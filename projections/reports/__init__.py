"""Reports built from the queries: the content (`content`), and its Markdown, JSON and HTML
renderings, with inline SVG charts and the number formats the terminal views share."""
