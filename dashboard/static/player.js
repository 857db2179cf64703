// A call's recording and its dialogue played together: a click on a phrase plays from it, and
// the phrase being spoken is highlighted while the recording plays. No dependencies.
"use strict";

function syncCall(call) {
  const audio = call.querySelector("audio");
  const lines = Array.from(call.querySelectorAll(".dialogue[data-sync] li"));
  if (!audio || !lines.length) return;
  const starts = lines.map((li) => parseFloat(li.dataset.start));
  let current = -1;

  function mark(index) {
    if (index === current) return;
    if (current >= 0) {
      lines[current].classList.remove("current");
      lines[current].removeAttribute("aria-current");
    }
    current = index;
    if (index >= 0) {
      lines[index].classList.add("current");
      lines[index].setAttribute("aria-current", "true");
    }
  }

  function lineAt(t) {
    let found = -1;
    for (let i = 0; i < starts.length; i += 1) {
      if (starts[i] <= t + 0.05) found = i;
      else break;
    }
    return found;
  }

  audio.addEventListener("timeupdate", () => mark(lineAt(audio.currentTime)));
  audio.addEventListener("seeked", () => mark(lineAt(audio.currentTime)));
  lines.forEach((li, i) => {
    li.addEventListener("click", () => {
      audio.currentTime = starts[i];
      mark(i);
      const playing = audio.play();
      if (playing) playing.catch(() => {});  // autoplay refused: the position is still set
    });
  });
}

document.querySelectorAll("article.call").forEach(syncCall);
