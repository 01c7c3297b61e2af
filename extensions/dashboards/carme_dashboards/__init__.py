"""carme-dashboards: notebooks served as web apps, each visit with its own kernel (Voila-compatible).

See CONTRACT.md beside this package for how the execution, the page and its client fit together.
"""
