"""Where generated images go: the world, the camera, a plane in front of the camera, a material.

Each target keeps one slot the add-on owns, found again by name or tag, so generating again
replaces the image in place instead of adding nodes, background images or planes. Every function
returns the image it replaced (or None), for the caller to delete once unused.
"""

from __future__ import annotations

import bpy
from mathutils import Vector

PLATE = "SinGAN Plate"
"""Name of the plate's image node (world, plane material) and of the plane object."""
PLATE_COORDINATES = "SinGAN Plate Coordinates"
TEXTURE = "SinGAN Texture"
"""Name of the texture's image node, and of the material made for objects without one."""
TEXTURE_MAPPING = "SinGAN Texture Mapping"
TEXTURE_COORDINATES = "SinGAN Texture Coordinates"
KIND = "singan_kind"
"""Custom property on images the add-on made: ``plate``, ``texture`` or ``super_resolution``."""
PLANE_DISTANCE = 0.9
"""The plate plane's distance from the camera, as a fraction of the camera's clip end."""
PLANE_OVERSCAN = 0.1
"""How much larger than the frame the plate plane is (its image extends its edge pixels there),
so that antialiasing at the frame's border never sees past the plane."""


def _use_nodes(owner: bpy.types.World | bpy.types.Material) -> bpy.types.ShaderNodeTree:
    if bpy.app.version < (5, 0, 0):  # 5.0 always uses nodes and deprecates the switch
        owner.use_nodes = True
    return owner.node_tree


def _node(tree: bpy.types.NodeTree, name: str, node_type: str, location: tuple[float, float]) -> bpy.types.Node:
    """The node called ``name``, made (or remade, if it has another type) as ``node_type``."""
    node = tree.nodes.get(name)
    if node is not None and node.bl_idname != node_type:
        tree.nodes.remove(node)
        node = None
    if node is None:
        node = tree.nodes.new(node_type)
        node.name = node.label = name
        node.location = location
    return node


def _output(tree: bpy.types.NodeTree, output_type: str) -> bpy.types.Node:
    """The active output node of a world or material tree (made if there is none)."""
    outputs = [node for node in tree.nodes if node.bl_idname == output_type]
    active = next((node for node in outputs if node.is_active_output), outputs[0] if outputs else None)
    return active or tree.nodes.new(output_type)


def _shader_into(tree: bpy.types.NodeTree, output: bpy.types.Node, shader_type: str) -> bpy.types.Node:
    """The ``shader_type`` node feeding ``output``'s Surface: the one plugged in already, else the
    tree's first such node (made if there is none), plugged in instead of what was there."""
    links = output.inputs["Surface"].links
    if links and links[0].from_node.bl_idname == shader_type:
        return links[0].from_node
    shader = next((node for node in tree.nodes if node.bl_idname == shader_type), None)
    if shader is None:
        shader = tree.nodes.new(shader_type)
        shader.location = output.location - Vector((300, 0))
    tree.links.new(shader.outputs[0], output.inputs["Surface"])
    return shader


def set_world_plate(world: bpy.types.World, image: bpy.types.Image, mapping: str) -> bpy.types.Image | None:
    """Make ``image`` the world background.

    Args:
        mapping: ``WINDOW``: Texture Coordinate (Window) -> Image Texture -> Background, so the
            image fills the camera frame whatever the camera does; ``ENVIRONMENT``: Environment
            Texture (equirectangular) -> Background, for 2:1 panoramas seen all around.

    Returns:
        The image the plate node showed before, or None.
    """
    tree = _use_nodes(world)
    previous = tree.nodes[PLATE].image if PLATE in tree.nodes else None  # before a mapping change remakes the node
    output = _output(tree, "ShaderNodeOutputWorld")
    background = _shader_into(tree, output, "ShaderNodeBackground")
    where = background.location
    if mapping == "WINDOW":
        plate = _node(tree, PLATE, "ShaderNodeTexImage", (where.x - 300, where.y))
        plate.extension = "EXTEND"  # no wrap-around blending at the frame's edges
        coordinates = _node(tree, PLATE_COORDINATES, "ShaderNodeTexCoord", (where.x - 500, where.y))
        tree.links.new(coordinates.outputs["Window"], plate.inputs["Vector"])
    else:
        plate = _node(tree, PLATE, "ShaderNodeTexEnvironment", (where.x - 300, where.y))
        if (coordinates := tree.nodes.get(PLATE_COORDINATES)) is not None:
            tree.nodes.remove(coordinates)
    tree.links.new(plate.outputs["Color"], background.inputs["Color"])
    plate.image = image
    return previous


def set_camera_plate(camera: bpy.types.Camera, image: bpy.types.Image) -> bpy.types.Image | None:
    """Show ``image`` as the camera's background image (in the camera view), reusing the entry
    that holds an earlier plate.

    Returns:
        The plate image the entry showed before, or None.
    """
    camera.show_background_images = True
    entry = next(
        (bg for bg in camera.background_images if bg.image is not None and bg.image.get(KIND) == "plate"), None
    )
    if entry is None:
        entry = camera.background_images.new()
    entry.source = "IMAGE"
    entry.alpha = 1.0
    previous, entry.image = entry.image, image
    return previous


def render_aspect(render: bpy.types.RenderSettings) -> float:
    """Width / height of the rendered frame: the pixel size the resolution percentage gives,
    times the pixel aspect."""
    width = render.resolution_x * render.resolution_percentage // 100 * render.pixel_aspect_x
    height = render.resolution_y * render.resolution_percentage // 100 * render.pixel_aspect_y
    return width / height


def render_size(render: bpy.types.RenderSettings) -> tuple[int, int]:
    """(width, height) in pixels of the rendered frame: the resolution times its percentage, each
    at least 16 (the daemon's minimum plate side); the pixel aspect is not a pixel count."""
    pct = render.resolution_percentage
    return max(16, render.resolution_x * pct // 100), max(16, render.resolution_y * pct // 100)


def plate_size(aspect: float, longest: int) -> tuple[int, int]:
    """(width, height) in pixels with the given aspect (width / height) and longest side; the
    other side is rounded to the nearest pixel and at least 8 (the daemon's minimum)."""
    if aspect >= 1:
        return longest, max(8, round(longest / aspect))
    return max(8, round(longest * aspect)), longest


def frame_corners(scene: bpy.types.Scene, camera: bpy.types.Object, distance: float) -> list[Vector]:
    """The corners of the camera's view at ``distance`` in front of it, in camera space (top right,
    bottom right, bottom left, top left), for the scene's render size, sensor fit and shift."""
    corners = camera.data.view_frame(scene=scene)
    if camera.data.type == "ORTHO":
        return [Vector((c.x, c.y, -distance)) for c in corners]
    return [c * (distance / -c.z) for c in corners]


def set_plane_plate(scene: bpy.types.Scene, camera: bpy.types.Object, image: bpy.types.Image) -> bpy.types.Image | None:
    """Show ``image`` on an emissive plane parented to the camera that fills its view, at
    :data:`PLANE_DISTANCE` of its clip end; the plane is made once and refitted on every call.

    Returns:
        The image the plane showed before, or None.
    """
    plane = next((child for child in camera.children if child.get(KIND) == "plate"), None)
    if plane is None:
        plane = _new_plane(scene, camera)
    corners = frame_corners(scene, camera, PLANE_DISTANCE * camera.data.clip_end)
    centre = sum(corners, Vector()) / 4
    for vertex, corner in zip(plane.data.vertices, corners, strict=True):
        vertex.co = centre + (corner - centre) * (1 + PLANE_OVERSCAN)
    plane.data.update()
    node = plane.active_material.node_tree.nodes[PLATE]
    previous, node.image = node.image, image
    return previous


def _new_plane(scene: bpy.types.Scene, camera: bpy.types.Object) -> bpy.types.Object:
    mesh = bpy.data.meshes.new(PLATE)
    mesh.from_pydata([(0, 0, 0)] * 4, [], [(0, 3, 2, 1)])  # corners as frame_corners orders them, facing the camera
    uv = mesh.uv_layers.new()
    low, high = -PLANE_OVERSCAN / 2, 1 + PLANE_OVERSCAN / 2  # the frame itself spans 0..1
    for loop, corner_uv in zip(
        uv.data, [(high, high), (low, high), (low, low), (high, low)], strict=True
    ):  # loops: corners 0, 3, 2, 1
        loop.uv = corner_uv
    plane = bpy.data.objects.new(PLATE, mesh)
    plane[KIND] = "plate"
    scene.collection.objects.link(plane)
    plane.parent = camera
    plane.visible_shadow = False
    mesh.materials.append(_emissive_material(PLATE))
    return plane


def _emissive_material(name: str) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    tree = _use_nodes(material)
    tree.nodes.clear()  # a new material's default Principled BSDF
    output = _output(tree, "ShaderNodeOutputMaterial")
    emission = _shader_into(tree, output, "ShaderNodeEmission")
    plate = _node(tree, PLATE, "ShaderNodeTexImage", (emission.location.x - 300, emission.location.y))
    plate.extension = "EXTEND"
    tree.links.new(plate.outputs["Color"], emission.inputs["Color"])
    return material


def set_material_texture(obj: bpy.types.Object, image: bpy.types.Image, repeat: float) -> bpy.types.Image | None:
    """Use ``image`` as the base colour of ``obj``'s active material (a new material
    :data:`TEXTURE` if it has none), repeated ``repeat`` times across the UV square.

    Chain: Texture Coordinate (UV) -> Mapping (scale ``repeat``) -> Image Texture (Repeat) ->
    Principled BSDF Base Color.

    Returns:
        The image the texture node showed before, or None.

    Raises:
        ValueError: the object cannot have materials (an empty, a camera...).
    """
    if obj.data is None or not hasattr(obj.data, "materials"):
        raise ValueError(f"'{obj.name}' cannot have a material")
    if obj.active_material is None:
        if obj.material_slots:
            obj.active_material = bpy.data.materials.new(TEXTURE)
        else:
            obj.data.materials.append(bpy.data.materials.new(TEXTURE))
    tree = _use_nodes(obj.active_material)
    shader = _shader_into(tree, _output(tree, "ShaderNodeOutputMaterial"), "ShaderNodeBsdfPrincipled")
    where = shader.location
    texture = _node(tree, TEXTURE, "ShaderNodeTexImage", (where.x - 300, where.y))
    texture.extension = "REPEAT"
    mapping = _node(tree, TEXTURE_MAPPING, "ShaderNodeMapping", (where.x - 500, where.y))
    mapping.inputs["Scale"].default_value = (repeat, repeat, 1.0)
    coordinates = _node(tree, TEXTURE_COORDINATES, "ShaderNodeTexCoord", (where.x - 700, where.y))
    tree.links.new(coordinates.outputs["UV"], mapping.inputs["Vector"])
    tree.links.new(mapping.outputs["Vector"], texture.inputs["Vector"])
    tree.links.new(texture.outputs["Color"], shader.inputs["Base Color"])
    previous, texture.image = texture.image, image
    return previous
