"""A strict structural check of a standalone HTML page with the standard library's html.parser."""
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Structure(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.doctypes, self.counts, self.stack, self.errors = [], {}, [], []
        self.title, self.attributes, self._in_title = "", [], False

    def handle_decl(self, decl):
        self.doctypes.append(decl)

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attributes += attrs
        if tag == "title":
            self._in_title = True
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):  # <rect .../>: complete in itself
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attributes += attrs

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def check_document(page: str) -> _Structure:
    """Parse ``page``; assert one doctype, one html/head/title/body, every element closed in order, no
    script and no external resource. Returns the parse (tag counts, title, attributes)."""
    parsed = _Structure()
    parsed.feed(page)
    parsed.close()
    assert [d.lower() for d in parsed.doctypes] == ["doctype html"], parsed.doctypes
    for tag in ("html", "head", "title", "body"):
        assert parsed.counts.get(tag) == 1, f"<{tag}> appears {parsed.counts.get(tag, 0)} times"
    assert not parsed.errors and not parsed.stack, (parsed.errors, parsed.stack)
    assert "script" not in parsed.counts and "link" not in parsed.counts and "img" not in parsed.counts
    external = [(k, v) for k, v in parsed.attributes if k in ("src", "href") or (v or "").startswith("url(")]
    assert not external, external
    assert page.rstrip().endswith("</html>") and parsed.title.strip()
    return parsed
