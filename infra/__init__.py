"""Ground floor: infrastructure every stage uses (errors, atomic files, config loading); imports nothing of the project."""
