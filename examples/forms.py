"""An HTML form with a file upload: ``microweb run examples/forms.py``, then open http://127.0.0.1:8000/.

Uploads are saved under ``$UPLOAD_DIR`` (default: a temporary directory).
"""
from __future__ import annotations

import os
import tempfile

from microweb import App, Request, Response, redirect

HERE = os.path.dirname(os.path.abspath(__file__))
UPLOAD_DIR = os.environ.get("UPLOAD_DIR") or tempfile.mkdtemp(prefix="microweb-uploads-")

app = App(template_folder=os.path.join(HERE, "templates"))
app.form_limits.max_file_size = 4 * 1024 * 1024  # bigger uploads get a 413


@app.get("/")
def form(request: Request) -> str:
    return request.render_template("upload.html", uploads=sorted(os.listdir(UPLOAD_DIR)), errors={})


@app.post("/")
def submit(request: Request) -> str | Response:
    name = request.form.get("name", "").strip()
    upload = request.files.get("document")
    errors = {}
    if not name:
        errors["name"] = "Please give your name."
    if upload is None or not upload.filename:
        errors["document"] = "Please choose a file."
    if errors:
        page = request.render_template("upload.html", uploads=sorted(os.listdir(UPLOAD_DIR)), errors=errors,
                                       name=name)
        return Response(page, 400)
    safe = "".join(c for c in upload.filename if c.isalnum() or c in "._-").lstrip(".") or "upload"
    upload.save(os.path.join(UPLOAD_DIR, safe))
    return redirect(app.url_for("form", saved=safe), 303)


if __name__ == "__main__":
    app.run()
