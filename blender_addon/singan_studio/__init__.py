"""SinGAN Studio for Blender: background plates and seamless textures from single-image GANs.

A thin client of the SinGAN Studio daemon (``singan serve``), which trains and runs the models;
this add-on only sends requests and places the images it gets back. Blender 4.2+ extension.
"""

from . import client, operators, panels, pixels, preferences, properties

_modules = (properties, preferences, client, pixels, operators, panels)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
