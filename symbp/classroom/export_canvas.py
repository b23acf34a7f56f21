"""Canvas (QTI 1.2) of a class: ``symbp export canvas CLASS -o quizzes.zip``.

The zip holds ``imsmanifest.xml`` and one assessment per student (``<student>/<student>.xml``,
a quiz titled with the spec's title and the student's id): each entry of each quantity a ``numerical_question`` item
(a CNN's quantity of more than two axes entry by entry of the 2-D slices the sheet shows,
titled ``<student> delta1[0,:,:,2][r,c]``),
answered in a ``render_fib fibtype="Decimal"`` box and scored 100 when the answer equals the key
(``varequal``) or lies within :func:`symbp.classroom.lms.tolerance` of it (``vargte`` and
``varlte``), as Canvas writes its own numerical questions. Canvas imports it with Settings >
Import course content > QTI .zip file. Texts are escaped by ElementTree and :func:`html.escape`,
the spec's title in the question text by :func:`symbp.emit.render.literal_lms_html` (no math).
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile

from ..emit.render import plain_lms_label
from .export_moodle import question_html
from .lms import ClassFolder, Entry, tolerance

QTI_NS = "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"
MANIFEST_NS = "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1"
#: a fixed timestamp for the zip's entries: the same class gives the same bytes
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def _metadata(item: ET.Element, fields: dict[str, str]) -> None:
    meta = ET.SubElement(ET.SubElement(item, "itemmetadata"), "qtimetadata")
    for label, entry in fields.items():
        field = ET.SubElement(meta, "qtimetadatafield")
        ET.SubElement(field, "fieldlabel").text = label
        ET.SubElement(field, "fieldentry").text = entry


def numerical_item(section: ET.Element, title: str, student: str, entry: Entry, shape, rule=None) -> None:
    ident = f"{student}_{entry.ident}"
    item = ET.SubElement(section, "item", ident=ident, title=f"{student} {entry.label}")
    _metadata(item, {"question_type": "numerical_question", "points_possible": "1.0"})
    presentation = ET.SubElement(item, "presentation")
    ET.SubElement(ET.SubElement(presentation, "material"), "mattext", texttype="text/html").text = \
        question_html(title, student, entry, shape, rule)
    response = ET.SubElement(presentation, "response_str", ident="response1", rcardinality="Single")
    ET.SubElement(ET.SubElement(response, "render_fib", fibtype="Decimal"), "response_label", ident="answer1")
    processing = ET.SubElement(item, "resprocessing")
    ET.SubElement(ET.SubElement(processing, "outcomes"), "decvar", maxvalue="100", minvalue="0",
                  varname="SCORE", vartype="Decimal")
    condition = ET.SubElement(processing, "respcondition", {"continue": "No"})
    either = ET.SubElement(ET.SubElement(condition, "conditionvar"), "or")
    ET.SubElement(either, "varequal", respident="response1").text = repr(entry.value)
    within = ET.SubElement(either, "and")
    ET.SubElement(within, "vargte", respident="response1").text = repr(entry.value - tolerance(entry.value))
    ET.SubElement(within, "varlte", respident="response1").text = repr(entry.value + tolerance(entry.value))
    ET.SubElement(condition, "setvar", action="Set", varname="SCORE").text = "100"


def assessment(klass: ClassFolder, student: str) -> str:
    root = ET.Element("questestinterop", xmlns=QTI_NS)
    test = ET.SubElement(root, "assessment", ident=student, title=f"{plain_lms_label(klass.title, klass.name)} ({student})")
    section = ET.SubElement(test, "section", ident="root_section")
    for quantity in klass.students[student].values():
        for entry in quantity.entries():
            numerical_item(section, klass.title, student, entry, quantity.shape, klass.rules.get(quantity.name))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def manifest(klass: ClassFolder) -> str:
    root = ET.Element("manifest", identifier=f"symbp_{klass.name}", xmlns=MANIFEST_NS)
    ET.SubElement(ET.SubElement(root, "metadata"), "schema").text = "IMS Content"
    ET.SubElement(root, "organizations")
    resources = ET.SubElement(root, "resources")
    for student in klass.students:
        resource = ET.SubElement(resources, "resource", identifier=student, type="imsqti_xmlv1p2",
                                 href=f"{student}/{student}.xml")
        ET.SubElement(resource, "file", href=f"{student}/{student}.xml")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def canvas_zip(klass: ClassFolder) -> bytes:
    """The QTI 1.2 package's bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        files = {"imsmanifest.xml": manifest(klass),
                 **{f"{s}/{s}.xml": assessment(klass, s) for s in klass.students}}
        for name, text in files.items():
            archive.writestr(zipfile.ZipInfo(name, ZIP_TIME), text.encode("utf-8"))
    return buffer.getvalue()
