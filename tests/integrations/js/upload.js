// Drives a direct-upload URL with the real tus-js-client (Node).
//   node upload.js start  FILE ENDPOINT STORE ABORT_AT  -> uploads until ABORT_AT bytes, then aborts
//   node upload.js resume FILE ENDPOINT STORE           -> finds the previous upload and completes it
// Prints one JSON line on stdout describing what happened.
"use strict";
const fs = require("fs");
const tus = require("tus-js-client");

const [phase, file, endpoint, store, abortAt] = process.argv.slice(2);
const size = fs.statSync(file).size;
const report = (obj) => { process.stdout.write(JSON.stringify(obj) + "\n"); };

const upload = new tus.Upload(fs.createReadStream(file), {
  endpoint,
  chunkSize: 32 * 1024,
  uploadSize: size,
  retryDelays: [0, 500, 1000],
  metadata: { filename: "tus-js.mp4", filetype: "video/mp4" },
  urlStorage: new tus.FileUrlStorage(store),
  onProgress(sent, total) {
    if (phase === "start" && sent >= Number(abortAt)) {
      upload.abort(false).then(() => { report({ phase, aborted: true, sent, url: upload.url }); process.exit(0); });
    }
  },
  onError(err) { report({ phase, error: String(err) }); process.exit(1); },
  onSuccess() { report({ phase, done: true, url: upload.url }); process.exit(0); },
});

if (phase === "start") {
  upload.start();
} else {
  upload.findPreviousUploads().then((previous) => {
    if (!previous.length) { report({ phase, error: "no previous upload stored" }); process.exit(1); }
    upload.resumeFromPreviousUpload(previous[0]);
    upload.start();
  });
}
