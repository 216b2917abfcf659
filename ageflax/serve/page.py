"""The manager's page at `/`: pick a photo, see each face's box, age and ID-check answer on it.

One self-contained HTML document (inline style and script, no external assets), so it works
on a till network without internet access. It posts the file as is to `/v1/estimate` and
draws the answer over the photo on a canvas (browsers turn it upright by its EXIF
orientation, as the service does).
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ageflax till</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
  #answer { font-size: 1.4rem; font-weight: 600; margin: .8rem 0; }
  .ask { color: #b00020; } .ok { color: #0a7a2f; } .error { color: #b00020; }
  canvas { max-width: 100%; border: 1px solid #ccc; }
  #details { color: #555; font-size: .9rem; white-space: pre-line; }
</style>
</head>
<body>
<h1>Age check</h1>
<p><input type="file" id="photo" accept="image/jpeg,image/png"></p>
<div id="answer"></div>
<canvas id="canvas" width="0" height="0"></canvas>
<div id="details"></div>
<script>
const $ = (id) => document.getElementById(id);

function show(text, kind) {
  $("answer").textContent = text;
  $("answer").className = kind;
}

// Small photos are drawn enlarged, so the labels stay readable; labels stay on the canvas.
const MIN_DRAWN_WIDTH = 720;

function drawFaces(image, faces) {
  const canvas = $("canvas"), context = canvas.getContext("2d");
  const scale = Math.max(1, MIN_DRAWN_WIDTH / image.naturalWidth);
  canvas.width = Math.round(image.naturalWidth * scale);
  canvas.height = Math.round(image.naturalHeight * scale);
  context.drawImage(image, 0, 0, canvas.width, canvas.height);
  const line = Math.max(2, Math.round(canvas.width / 300));
  context.font = `bold ${Math.max(14, line * 7)}px system-ui, sans-serif`;
  context.lineWidth = line;
  for (const face of faces) {
    const colour = face.id_check ? "#d00030" : "#10a040";
    const [x, y, w, h] = [face.box.x, face.box.y, face.box.width, face.box.height]
        .map((value) => value * scale);
    context.strokeStyle = colour;
    context.strokeRect(x, y, w, h);
    const label = `${face.age.toFixed(1)} (${face.band}) ${face.id_check ? "ID check" : "no ID"}`;
    const height = line * 9, width = context.measureText(label).width + 2 * line;
    const top = y > height ? y - height : Math.min(y + h, canvas.height - height);
    const left = Math.max(0, Math.min(x, canvas.width - width));
    context.fillStyle = colour;
    context.fillRect(left, top, width, height);
    context.fillStyle = "#fff";
    context.fillText(label, left + line, top + height - 2 * line);
  }
}

async function estimate(file) {
  show("Estimating...", "");
  $("details").textContent = "";
  const type = file.type === "image/png" ? "image/png" : "image/jpeg";
  const response = await fetch("v1/estimate", {method: "POST", headers: {"Content-Type": type},
                                               body: file});
  const answer = await response.json();
  if (!response.ok) {
    show(`Cannot use this photo: ${answer.error}`, "error");
    return;
  }
  show(answer.id_check ? `ASK FOR ID: ${answer.reason}` : "No ID needed",
       answer.id_check ? "ask" : "ok");
  const image = new Image();
  image.onload = () => { drawFaces(image, answer.faces); URL.revokeObjectURL(image.src); };
  image.src = URL.createObjectURL(file);
  $("details").textContent = answer.faces.map((face, i) =>
      `face ${i + 1}: ${face.age.toFixed(1)} years, ${face.band}` +
      (face.reason ? ` - ${face.reason}` : "")).join("\\n") +
      `\\npolicy: ${answer.policy}\\nmodel: ${answer.model.model} step ${answer.model.step}`;
}

$("photo").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) estimate(file).catch((error) => show(`Request failed: ${error}`, "error"));
});
</script>
</body>
</html>
"""
