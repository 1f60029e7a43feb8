"""SinGAN Studio's Blender add-on: the extension's sources (``singan_studio/``) and the command
that packs them into an installable zip (``python -m blender_addon.build``)."""
