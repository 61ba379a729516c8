"""The built-in default data: real piano material fetched from the package registries."""
