"""What every part of a method (area, extractor, inpainter) has: ``check()``, called when the method is
built, before any model is loaded or any object run."""


class Component:
    def check(self) -> None:
        """Raise ``ModelNotFoundError`` (one line) when a model this part needs is not on this machine; a
        fast file check, nothing loaded. A part without a model keeps this no-op."""
