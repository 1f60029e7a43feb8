"""Install the built extension zip into the throw-away user dir: ``install.py ZIP OUT.json``.

Records what Blender's own validator says about the zip, where the extension and its wheels were
installed, and which of its classes got registered."""

import os
import subprocess
import sys
import tomllib
import zipfile

import bpy

import harness


def wheels_by_platform(zip_path, cli_dir):
    """The manifest's wheels each platform it lists gets, by Blender's own matching rule."""
    sys.path.insert(0, cli_dir)
    import blender_ext

    with zipfile.ZipFile(zip_path) as zf:
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    return {
        platform: [
            os.path.basename(wheel)
            for wheel in manifest["wheels"]
            if blender_ext.blender_platform_compatible_with_wheel_platform_from_filepath(platform, wheel)
        ]
        for platform in manifest["platforms"]
    }


def body(args, out):
    (zip_path,) = args
    validator = os.path.join(bpy.utils.system_resource("SCRIPTS"), "addons_core", "bl_pkg", "cli", "blender_ext.py")
    checked = subprocess.run([sys.executable, validator, "validate", zip_path], capture_output=True, text=True)
    out["validate"] = {"returncode": checked.returncode, "output": checked.stdout + checked.stderr}
    out["wheels_by_platform"] = wheels_by_platform(zip_path, os.path.dirname(validator))

    addon = harness.install(zip_path)
    extensions = bpy.utils.user_resource("EXTENSIONS")
    site_packages = os.path.join(extensions, ".local", "lib", "python3.11", "site-packages")
    out["blender_version"] = bpy.app.version_string
    out["extensions_dir"] = extensions
    out["module_file"] = addon.__file__
    out["enabled"] = harness.EXTENSION in bpy.context.preferences.addons
    out["wheel_site_packages"] = sorted(os.listdir(site_packages)) if os.path.isdir(site_packages) else None
    out["registered"] = {
        cls.__name__: cls.is_registered
        for module in (addon.operators, addon.panels, addon.preferences, addon.properties)
        for cls in module.classes
    }
    out["panels"] = {name: hasattr(bpy.types, name) for name in ("SINGAN_PT_world", "SINGAN_PT_sidebar")}
    out["operators"] = sorted(name for name in dir(bpy.ops.singan) if not name.startswith("_"))
    out["scene_settings"] = hasattr(bpy.types.Scene, "singan")
    out["preferences_endpoint"] = harness.preferences().endpoint


if __name__ == "__main__":
    harness.main(body)
