"""The local web page: its FastAPI app and command line (:mod:`.app`), the HTML page
(:mod:`.page`) and the model(s) behind it (:mod:`.backend`)."""
