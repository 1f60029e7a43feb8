"""Pasted objects hidden under their "Harmonized <name>" layer.

Harmonize hides the object layer (not deleted) and adds the harmonized layer above it. Krita 5.1
cannot undo a visibility change made from Python (measured: ``Node.setVisible`` makes no undo
step), so the visibility is tied to the harmonized layer instead: the object is hidden exactly
while its harmonized layer is in the document. One undo (which removes the harmonized layer), or
deleting that layer, shows the object again; redo hides it again. The harmonized layer is also
opaque wherever the object has any alpha, so showing the object by hand changes nothing either.

The links live for the Krita session (not saved in the document).
"""

from __future__ import annotations

from dataclasses import dataclass

from krita import Document, Krita, Node

from . import canvas


@dataclass
class _Link:
    document: Document
    result_id: object  # the harmonized layer's QUuid
    obj: Node
    hidden: bool


class HiddenObjects:
    """The links of the session; :meth:`update` is called from the extension's timer."""

    def __init__(self):
        self._links: list[_Link] = []

    def hide_under(self, document: Document, result: Node, obj: Node) -> None:
        """Hide ``obj`` while ``result`` (already added to ``document``) stays in the document."""
        obj.setVisible(False)
        document.refreshProjection()
        self._links.append(_Link(document, result.uniqueId(), obj, hidden=True))

    def update(self) -> None:
        """Show each object whose harmonized layer left its document (undo, delete), hide it again
        when the layer comes back (redo); forget the links of closed documents."""
        open_documents = Krita.instance().documents()
        self._links = [link for link in self._links if any(link.document == d for d in open_documents)]
        for link in self._links:
            present = canvas.find(link.document.rootNode(), link.result_id) is not None
            if present != link.hidden:
                link.obj.setVisible(not present)
                link.hidden = present
                link.document.refreshProjection()


LINKS = HiddenObjects()
"""The session's links (one Krita process, one set)."""
