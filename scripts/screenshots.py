#!/usr/bin/env python3
"""Render the TUI to screenshots/*.png (and .svg) at 120×40 and a phone's 60×24.

By default the scenes come from the hand-built sample snapshot in tests/ui_fixtures.py. With
``--from-client MODULE:FUNC`` they come from any EngineClient that ``FUNC()`` returns (the live
demo), with the real clock. Other scripts can call :func:`render` on an app of their own.

Needs cairosvg and a monospace font with box-drawing glyphs (``apt-get install -y
fonts-dejavu-core``). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from textual.app import App
from textual.pilot import Pilot

ROOT = Path(__file__).resolve().parent.parent
SIZES: tuple[tuple[int, int], ...] = ((120, 40), (60, 24))
PNG_FONT = "DejaVu Sans Mono"
Before = Callable[[Pilot], Awaitable[None]]


async def _settle(pilot: Pilot, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: the app did not get a snapshot within {timeout}s")
        await pilot.pause(0.05)
    for _ in range(3):  # layout, then the render that depends on sizes, then paint
        await pilot.pause()


async def render(
    app: App,
    path: Path,
    size: tuple[int, int],
    before: Before | None = None,
    timeout: float = 15,
    keep_svg: bool = False,
) -> Path:
    """Run ``app`` headless at ``size``, let ``before`` press keys, save ``path`` (.png), and
    the .svg beside it when ``keep_svg``. Returns the PNG path."""
    import cairosvg  # imported here so `--help` works without it

    async with app.run_test(size=size) as pilot:
        await _settle(pilot, lambda: getattr(app, "snap", None) is not None, timeout)
        if before is not None:
            await before(pilot)
            await _settle(pilot, lambda: True, timeout)
        svg = app.export_screenshot(title=f"sentry-tui {size[0]}×{size[1]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if keep_svg:
        path.with_suffix(".svg").write_text(svg, encoding="utf-8")
    # Textual names Fira Code; point the PNG at an installed monospace font so columns align.
    png_svg = svg.replace("Fira Code", PNG_FONT)
    cairosvg.svg2png(bytestring=png_svg.encode("utf-8"), write_to=str(path), scale=1.5)
    return path


async def _press(pilot: Pilot, *keys: str) -> None:
    for k in keys:
        await pilot.press(k)


def _open_approval(pilot: Pilot) -> Awaitable[None]:
    """Focus the approvals queue and press `a`: the dialog names what would be approved."""
    return _press(pilot, "tab", "a")


SCENES: dict[str, Before | None] = {
    "main": None,
    "approval": _open_approval,
    "help": lambda pilot: _press(pilot, "question_mark"),
}


def _load(spec: str) -> Callable[[], object]:
    module, _, func = spec.partition(":")
    if not func:
        raise SystemExit(f"--from-client wants MODULE:FUNC, got {spec!r}")
    return getattr(importlib.import_module(module), func)


@contextlib.contextmanager
def live_demo(timeout: float = 90) -> Iterator[object]:
    """The demo scene on its private tmux server, its engine run to the approval gate."""
    import tempfile
    import threading

    from sentry_tui import demo, policy
    from sentry_tui.config import Paths
    from sentry_tui.runner import Runner, RunnerOptions

    scene = demo.start_scene()
    state_dir = Path(tempfile.mkdtemp(prefix="sentry-shots-"))
    runner = Runner(
        policy.load_policy([scene.policy]),
        Paths(state_dir),
        RunnerOptions(socket_name=scene.socket),
    )
    stop = threading.Event()
    try:
        runner.open()
        threading.Thread(target=runner.run, args=(stop,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not any(a.status == "pending" for a in runner.snapshot().state.approvals.values()):
            if time.monotonic() > deadline:
                raise SystemExit("screenshots: the demo did not reach its approval gate")
            time.sleep(0.2)
        time.sleep(2.5)  # let the prompt pane's waiting state and tails settle
        yield runner
    finally:
        stop.set()
        runner.close()
        scene.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument(
        "--from-client",
        metavar="MODULE:FUNC",
        help="a callable returning an EngineClient (default: the test fixture)",
    )
    parser.add_argument(
        "--demo", action="store_true", help="shoot the live demo (private tmux server)"
    )
    parser.add_argument("--scene", action="append", choices=sorted(SCENES), default=[])
    parser.add_argument("--size", action="append", default=[], metavar="WxH")
    parser.add_argument("--svg", action="store_true", help="keep the SVG beside each PNG")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    from sentry_tui.ui.app import SentryApp

    demo_client: object | None = None

    def make_app() -> App:
        if demo_client is not None:
            return SentryApp(demo_client)  # type: ignore[arg-type]
        if args.from_client:
            return SentryApp(_load(args.from_client)())  # type: ignore[arg-type]
        from ui_fixtures import FakeClient, frozen_clock

        return SentryApp(FakeClient(), clock=frozen_clock)

    sizes = [tuple(int(n) for n in s.split("x")) for s in args.size] or list(SIZES)
    with live_demo() if args.demo else contextlib.nullcontext() as client:
        demo_client = client
        for name in args.scene or list(SCENES):
            for w, h in sizes:
                path = args.out / f"{name}-{w}x{h}.png"
                asyncio.run(render(make_app(), path, (w, h), SCENES[name], keep_svg=args.svg))
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
