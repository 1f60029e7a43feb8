"""SinGAN Studio for Krita: texture variations from a selection, harmonizing a pasted layer,
paint to image and super-resolution, computed by the SinGAN Studio daemon (``singan serve``).

Inside Krita this module first makes the bundled dependencies importable (:mod:`.deps`), then
registers the extension (actions) and the docker. Elsewhere (the project's tests, the build) it
does nothing, so the modules without ``krita`` imports (``actions``, ``daemon_client``, ``deps``,
``errors``, ``ops``, ``options``, ``pixels``, ``studio``, ``words``) can be
imported there.
"""

from importlib.util import find_spec
from pathlib import Path

DOCKER_ID = "singan_studio_docker"

if find_spec("krita") is not None:
    from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

    from .deps import activate

    _deps = activate(Path(__file__).resolve().parent)
    if _deps.zmq is None:
        from . import missing

        missing.PROBLEM = _deps.problem
        _docker = missing.MissingDepsDocker
    else:
        from .docker import SinGANDocker as _docker
        from .extension import SinGANExtension

        Krita.instance().addExtension(SinGANExtension(Krita.instance(), _deps))
    Krita.instance().addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, _docker))
