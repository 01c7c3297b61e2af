"""OutputCollector on message dicts: stream merging, clear_output, display ids across cells."""

from __future__ import annotations

from typing import Any

from carme.kernels.message import KernelMessage
from carme_dashboards.outputs import OutputCollector, apply_control_characters


def msg(msg_type: str, **content: Any) -> dict[str, Any]:
    return {"header": {"msg_type": msg_type}, "content": content}


def stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return msg("stream", name=name, text=text)


def display(text: str, display_id: str | None = None, msg_type: str = "display_data") -> dict[str, Any]:
    return msg(msg_type, data={"text/plain": text}, metadata={},
               transient={"display_id": display_id} if display_id else {})


def test_consecutive_streams_of_one_name_merge_and_others_do_not() -> None:
    c = OutputCollector()
    outputs = c.begin(0)
    for m in (stream("a\n"), stream("b\n"), stream("oops\n", "stderr"), stream("c\n"), display("d"), stream("e")):
        assert c.add(m)
    c.finish()
    assert [(o["output_type"], o.get("name"), o.get("text")) for o in outputs] == [
        ("stream", "stdout", "a\nb\n"), ("stream", "stderr", "oops\n"), ("stream", "stdout", "c\n"),
        ("display_data", None, None), ("stream", "stdout", "e")]


def test_streams_of_different_cells_do_not_merge() -> None:
    c = OutputCollector()
    first = c.begin(0)
    c.add(stream("a"))
    second = c.begin(1)
    c.add(stream("b"))
    c.finish()
    assert first[0]["text"] == "a" and second[0]["text"] == "b"


def test_carriage_returns_and_backspaces_show_the_last_state() -> None:
    c = OutputCollector()
    outputs = c.begin(0)
    for text in ("progress 10%\r", "progress 50%\r", "progress 100%\n", "ab\bc\n"):
        c.add(stream(text))
    c.finish()
    assert outputs[0]["text"] == "progress 100%\nac\n"
    assert apply_control_characters("x\r\ny\r") == "x\r\ny\r"  # CRLF and a trailing CR stay


def test_clear_output_now_and_with_wait() -> None:
    c = OutputCollector()
    outputs = c.begin(0)
    c.add(stream("gone"))
    c.add(msg("clear_output", wait=False))
    assert outputs == []
    c.add(stream("old"))
    c.add(msg("clear_output", wait=True))
    c.finish()
    assert [o["text"] for o in outputs] == ["old"]  # wait: kept until the next output arrives
    c.add(stream("new"))
    c.finish()
    assert [o["text"] for o in outputs] == ["new"]


def test_update_display_data_updates_every_output_with_the_id_in_every_cell() -> None:
    c = OutputCollector()
    first = c.begin(0)
    c.add(display("v1", "d1"))
    c.add(display("other", "d2"))
    second = c.begin(1)
    c.add(display("v1 again", "d1", msg_type="execute_result"))
    c.add(msg("update_display_data", data={"text/plain": "v2"}, metadata={"m": 1}, transient={"display_id": "d1"}))
    assert first[0]["data"] == {"text/plain": "v2"} and first[0]["metadata"] == {"m": 1}
    assert second[0]["data"] == {"text/plain": "v2"}
    assert first[1]["data"] == {"text/plain": "other"}
    assert c.updated_cells() == {0}  # earlier cells to re-render; this cell is rendered anyway
    assert len(second) == 1  # an update adds no output
    assert not c.add(msg("update_display_data", data={"text/plain": "x"}, transient={"display_id": "never-shown"}))


def test_a_cleared_display_is_not_updated_but_other_cells_still_are() -> None:
    c = OutputCollector()
    first = c.begin(0)
    c.add(display("keep", "d"))
    second = c.begin(1)
    c.add(display("cleared", "d"))
    c.add(msg("clear_output", wait=False))
    c.add(msg("update_display_data", data={"text/plain": "new"}, metadata={}, transient={"display_id": "d"}))
    assert first[0]["data"] == {"text/plain": "new"} and second == []


def test_execute_result_error_and_kernel_messages() -> None:
    c = OutputCollector()
    outputs = c.begin(3)
    result = KernelMessage.from_parts("iopub", {"msg_type": "execute_result", "msg_id": "1"}, {}, {},
                                      {"data": {"text/plain": "42"}, "metadata": {}, "execution_count": 7})
    assert c.add(result)
    assert c.add(msg("error", ename="ValueError", evalue="bad", traceback=["line 1", "line 2"]))
    assert not c.add(msg("status", execution_state="idle"))
    assert not c.add(msg("execute_input", code="secret"))
    assert outputs[0] == {"output_type": "execute_result", "data": {"text/plain": "42"}, "metadata": {},
                          "execution_count": 7}
    assert outputs[1] == {"output_type": "error", "ename": "ValueError", "evalue": "bad",
                          "traceback": ["line 1", "line 2"]}
