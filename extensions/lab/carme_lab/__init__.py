"""carme-lab: the JupyterLab frontend on carme."""
