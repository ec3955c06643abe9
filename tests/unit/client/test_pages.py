"""Reading every page of a List call: tokens followed to the end, an empty page or a limit stops it."""

from dataclasses import dataclass, field

from client.pages import all_pages


@dataclass
class Page:
    items: list
    next_page_token: str = ""


@dataclass
class FakeList:
    """A List RPC over fixed pages: page_token "" is the first, "p<i>" the i-th."""
    pages: list
    tokens: list = field(default_factory=list)

    def __call__(self, request):
        self.tokens.append(request)
        return self.pages[int(request[1:]) if request else 0]


def chain(*batches):
    return [Page(b, f"p{i + 1}" if i + 1 < len(batches) else "") for i, b in enumerate(batches)]


def test_follows_tokens_to_the_last_page():
    call = FakeList(chain([1, 2], [3], [4, 5]))
    assert all_pages(call, lambda token: token, "items") == [1, 2, 3, 4, 5]
    assert call.tokens == ["", "p1", "p2"]


def test_an_empty_page_with_a_token_ends_the_read():
    call = FakeList([Page([1], "p1"), Page([], "p2"), Page([9])])
    assert all_pages(call, lambda token: token, "items") == [1]
    assert call.tokens == ["", "p1"]


def test_limit_stops_reading_and_trims():
    call = FakeList(chain([1, 2], [3, 4], [5]))
    assert all_pages(call, lambda token: token, "items", limit=3) == [1, 2, 3]
    assert call.tokens == ["", "p1"]


def test_the_request_is_built_per_page():
    seen = []
    call = FakeList(chain(["a"], ["b"]))
    all_pages(call, lambda token: seen.append(token) or token, "items")
    assert seen == ["", "p1"]
