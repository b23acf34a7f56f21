"""The HTML handouts (``derive --html``): every number of the worked step, rules linked, answers
withheld from the student page's source, hostile titles escaped; rendered in headless Chromium,
whose DOM text and a phone-width screenshot are checked (no horizontal overflow of the page).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from symbp.emit.codegen import module_source
from symbp.emit.handout_html import render_html_handouts
from symbp.emit.handouts import HandoutOptions
from symbp.emit.outputs import rendered_outputs
from symbp.spec.model import Spec, load_spec
from symbp.witnesses.module import load_module
from test_handouts import OTHER_SPECS, SEED_DELTAS, SEED_FORWARD, SEED_UPDATED, formatted

HOSTILE_TITLE = '<script>alert(1)</script>"><img src=x onerror=alert(2)> & {{7*7}}'
PHONE_WIDTH = 390


def mathml_numbers(page: str) -> set[str]:
    """Every number the page's MathML shows (U+2212 read as a minus)."""
    return {n.replace("\u2212", "-") for n in re.findall(r"<mn>([^<]*)</mn>", page)}


class Elements(HTMLParser):
    """Every start tag and its attributes, and the page's text."""

    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parsed(page: str) -> Elements:
    elements = Elements()
    elements.feed(page)
    return elements


@pytest.fixture(scope="module")
def seed_pages():
    spec = load_spec()
    return render_html_handouts(spec, HandoutOptions(explain=("W1[2,0]",)))


def test_seed_solution_shows_every_number_and_links_each_result_to_its_rule(seed_pages):
    solution = mathml_numbers(seed_pages["solution"])
    assert not set(SEED_FORWARD + SEED_DELTAS + SEED_UPDATED) - solution
    elements = parsed(seed_pages["solution"])
    ids = {attrs["id"] for _, attrs in elements.tags if "id" in attrs}
    links = [attrs["href"] for tag, attrs in elements.tags if tag == "a" and attrs.get("class") == "rule-link"]
    assert len(links) > 20 and all(link[1:] in ids for link in links)
    table = seed_pages["solution"].split("<h2>Updated parameters</h2>")[1].split("</table>")[0]
    assert table.count('class="rule-link"') == len(load_spec().param_names)   # each updated matrix too
    assert "\\" not in "".join(re.findall(r"<math.*?</math>", seed_pages["solution"], re.S)), \
        "a LaTeX command was left unconverted"


def test_seed_student_page_withholds_the_answers_in_its_source(seed_pages):
    student = seed_pages["student"]
    spec = load_spec()
    givens = formatted(*spec.initial_params().values(), spec.x, spec.y)
    leaked = [v for v in SEED_UPDATED + SEED_DELTAS + ["0.41371"]
              if v in student and v not in set(SEED_FORWARD) | givens]
    assert not leaked
    assert set(SEED_FORWARD) <= mathml_numbers(student)
    assert 'class="blank"' in student


@pytest.mark.parametrize("key", sorted(OTHER_SPECS))
def test_other_networks_answers_only_on_the_solution_page(key):
    spec = OTHER_SPECS[key]()
    module = load_module(module_source(spec), spec.name)
    params = module.initial_params()
    x, y = module.X[:spec.batch_size], module.Y[:spec.batch_size]
    grads, deltas = module.backward(params, x, y)
    updated, _ = module.step(params, x, y)
    pages = render_html_handouts(spec, HandoutOptions(explain=("W0[1,0]",)), module=module)
    given = formatted(spec.x, spec.y, *params.values(), *module.forward(params, x))
    answers = formatted(*deltas, *grads.values(), *updated.values(), module.loss(params, x, y))
    assert not answers - mathml_numbers(pages["solution"])
    assert not (answers - given) & mathml_numbers(pages["student"])
    assert not (answers - given) & set(re.findall(r"-?\d+\.\d+", pages["student"]))


def hostile_spec() -> Spec:
    data = load_spec().to_dict()
    data["title"] = HOSTILE_TITLE
    return Spec.from_dict(data)


def test_hostile_title_is_text_not_markup():
    for page in render_html_handouts(hostile_spec(), HandoutOptions()).values():
        elements = parsed(page)
        assert not [tag for tag, _ in elements.tags if tag in ("script", "img", "iframe", "object")]
        assert not [name for _, attrs in elements.tags for name in attrs if name.startswith("on")]
        assert HOSTILE_TITLE in "".join(elements.text)


# ---------------------------------------------------------------- in a real browser
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is missing: bash scripts/install-browser.sh installs it"
    return path


def run_chromium(*args: str) -> str:
    done = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGBA bytes) of an 8-bit, non-interlaced RGB(A) PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        header = body if kind == b"IHDR" else header
        chunks += [body] if kind == b"IDAT" else []
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6) and header[12] == 0
    channels = 4 if color == 6 else 3
    raw, stride, rows, previous = zlib.decompress(b"".join(chunks)), width * channels, [], bytes(width * channels)
    for r in range(height):
        kind, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            p = left + up - corner
            nearest = min((abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - corner), 2, corner))[2]
            line[i] = (line[i] + (0, left, up, (left + up) // 2, nearest)[kind]) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, [bytes(b for i, b in enumerate(row) if i % channels < 3) for row in rows]


@pytest.fixture(scope="module")
def written_pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("html")
    files = rendered_outputs(hostile_spec(), folder, html=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8") if isinstance(text, str) else path.write_bytes(text)
    return {kind: folder / f"cs4820_a7_{kind}.html" for kind in ("solution", "student")}


@pytest.mark.parametrize("kind", ["solution", "student"])
def test_chromium_renders_the_text_and_runs_no_script(written_pages, kind):
    dom = run_chromium("--virtual-time-budget=3000", "--dump-dom", written_pages[kind].as_uri())
    elements = parsed(dom)
    text = " ".join("".join(elements.text).split())
    assert HOSTILE_TITLE in text
    assert "Back-propagation, from the output layer down" in text
    assert not [tag for tag, _ in elements.tags if tag in ("script", "img")]
    assert len([tag for tag, _ in elements.tags if tag == "math"]) > 20
    if kind == "solution":
        assert not set(SEED_DELTAS) - {n.replace("\u2212", "-") for n in re.findall(r"<mn>([^<]*)</mn>", dom)}


@pytest.mark.parametrize("kind", ["solution", "student"])
def test_phone_width_page_does_not_overflow(written_pages, kind, tmp_path):
    page = written_pages[kind]
    probe = tmp_path / "probe.html"
    probe.write_text(
        f'<!DOCTYPE html><body style="margin:0"><iframe id="f" src="{page.as_uri()}" '
        f'style="width:{PHONE_WIDTH}px;height:800px;border:0"></iframe><pre id="out"></pre><script>'
        "document.getElementById('f').addEventListener('load', function () {"
        " var d = this.contentDocument.documentElement;"
        " document.getElementById('out').textContent = JSON.stringify("
        "{scroll: d.scrollWidth, client: d.clientWidth,"
        " boxes: [...d.querySelectorAll('.line')].filter(b => b.scrollWidth > b.clientWidth).length}); });"
        "</script></body>", encoding="utf-8")
    dom = run_chromium("--allow-file-access-from-files", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    measured = json.loads(re.search(r'<pre id="out">(.*?)</pre>', dom).group(1))
    assert measured["scroll"] <= measured["client"], measured      # the page itself never scrolls sideways
    assert measured["boxes"] > 0     # wide matrices scroll in their own box instead

    shot = tmp_path / "phone.png"
    run_chromium(f"--window-size={PHONE_WIDTH},1600", "--hide-scrollbars", f"--screenshot={shot}", page.as_uri())
    width, height, rows = png_pixels(shot)
    assert width == PHONE_WIDTH
    margin = [row[-3 * 8:] for row in rows]    # the body's right padding: nothing drawn there
    assert all(set(strip) <= {255} for strip in margin), "something is drawn past the body's right edge"
    assert any(set(row) - {255} for row in rows), "the screenshot is blank"


def test_derive_html_writes_both_pages(tmp_path, symbp_cli):
    done = symbp_cli("derive", "--html", "--no-check", "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    pages = {kind: (tmp_path / f"cs4820_a7_{kind}.html").read_text(encoding="utf-8") for kind in ("solution", "student")}
    assert set(SEED_DELTAS) <= mathml_numbers(pages["solution"])
    assert not set(SEED_DELTAS) - set(SEED_FORWARD) & mathml_numbers(pages["student"])
    assert (tmp_path / "cs4820_a7_solution.tex").is_file()
