"""The SinGAN Studio Krita plugin: its sources (``singan_krita/``, ``singan_krita.desktop``,
``singan_krita.action``) and the command that packages them (``python -m krita_plugin.build``)."""
