"""The stroke planner: from (canvas, target, robot limits) to an ordered, paintable `Plan`.

Will own the objectives (pixel, perceptual, text score, keep-what-is-there), stroke optimisation
through `sim.Renderer`, ordering, paint and clean steps, and export (JSON, SVG, G-code).
"""
