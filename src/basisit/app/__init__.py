"""Use cases: what an operator (CLI) or, later, the portal asks for.

A use case moves requests through the workflow, calls the drivers (provision, configure,
monitoring) and returns their results; the renderers (cli/) only parse input and show them.
"""
