// The simulator's phone: shows the patient's message log and posts their replies.
(function () {
  "use strict";
  const patient = document.getElementById("patient");
  const instrument = document.getElementById("instrument");
  const startButton = document.getElementById("start");
  const thread = document.getElementById("thread");
  const empty = document.getElementById("empty");
  const status = document.getElementById("status");
  const state = document.getElementById("state");
  const form = document.getElementById("reply");
  const text = document.getElementById("text");
  const contactName = document.getElementById("contact-name");
  const contactNumber = document.getElementById("contact-number");
  let shown = "";
  let latest = 0;
  let outbox = Promise.resolve();

  function say(message, kind) {
    status.textContent = message;
    status.className = kind || "";
  }

  function time(iso) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return "";
    return when.toLocaleTimeString("en-GB", {hour: "2-digit", minute: "2-digit"});
  }

  function bubble(message) {
    const item = document.createElement("li");
    item.className = message.direction;
    item.dataset.direction = message.direction;
    const body = document.createElement("span");
    body.className = "body";
    body.textContent = message.body;
    const stamp = document.createElement("time");
    stamp.dateTime = message.created_at;
    stamp.textContent = time(message.created_at);
    item.append(body, stamp);
    return item;
  }

  function showState(data) {
    state.className = "badge";
    if (data.opted_out) {
      state.textContent = "Opted out";
      state.classList.add("opted-out");
    } else if (data.active) {
      state.textContent = `${data.instrument || "Questionnaire"} in progress`;
      state.classList.add("active");
    } else {
      state.textContent = "No questionnaire open";
    }
  }

  function showContact() {
    const option = patient && patient.selectedOptions[0];
    if (!option) return;
    contactName.textContent = option.dataset.practice || "";
    contactNumber.textContent = option.dataset.smsNumber || "";
  }

  async function refresh() {
    if (!patient || !patient.value) return;
    const ticket = ++latest;
    let data;
    try {
      const url = `/simulator/messages?patient_id=${encodeURIComponent(patient.value)}`;
      const response = await fetch(url);
      if (!response.ok) return;
      data = await response.json();
    } catch (error) {
      return; // the server is restarting: the next poll tries again
    }
    if (ticket !== latest) return; // a newer refresh has already answered
    showState(data);
    const key = patient.value + JSON.stringify(data.messages.map((m) => m.id));
    if (key === shown) return;
    shown = key;
    thread.replaceChildren(...data.messages.map(bubble));
    empty.hidden = data.messages.length > 0;
    thread.scrollTop = thread.scrollHeight;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `error ${response.status}`);
    return data;
  }

  async function busy(button, work) {
    button.disabled = true;
    try {
      await work();
    } finally {
      button.disabled = false;
    }
  }

  if (startButton) {
    startButton.addEventListener("click", () => busy(startButton, async () => {
      say("");
      try {
        const summary = await post("/simulator/start", {
          patient_id: patient.value,
          instrument: instrument.value,
          continue_if_positive: document.getElementById("continue").checked,
        });
        if (summary.started) {
          say("Questionnaire sent.", "ok");
        } else {
          say("Waiting: this patient already has a questionnaire open.", "error");
        }
      } catch (error) {
        say(error.message, "error");
      }
      await refresh();
      text.focus();
    }));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!patient || !patient.value) {
      say("Choose a patient first.", "error");
      return;
    }
    const body = text.value;
    if (body === "") return; // a phone sends no empty texts
    text.value = "";
    const patientId = patient.value;
    // Texts typed quickly one after another are sent in order, as a phone would.
    outbox = outbox.then(async () => {
      try {
        await post("/simulator/send", {patient_id: patientId, text: body});
      } catch (error) {
        say(error.message, "error");
      }
      await refresh();
    });
  });

  if (patient) {
    patient.addEventListener("change", () => {
      shown = "";
      say("");
      showContact();
      refresh();
    });
  }
  showContact();
  setInterval(refresh, 1500);
  refresh();
})();
