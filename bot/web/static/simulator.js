// The simulator's phone: shows the message log and posts replies.
(function () {
  const patient = document.getElementById("patient");
  const instrument = document.getElementById("instrument");
  const thread = document.getElementById("thread");
  const status = document.getElementById("status");
  const text = document.getElementById("text");
  let shown = "";

  async function refresh() {
    if (!patient.value) return;
    const response = await fetch(`/simulator/messages?patient_id=${encodeURIComponent(patient.value)}`);
    if (!response.ok) return;
    const data = await response.json();
    const key = JSON.stringify(data.messages.map((m) => m.id));
    if (key === shown) return;
    shown = key;
    thread.replaceChildren(...data.messages.map((m) => {
      const item = document.createElement("li");
      item.className = m.direction;
      item.dataset.direction = m.direction;
      item.textContent = m.body;
      return item;
    }));
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

  document.getElementById("start").addEventListener("click", async () => {
    status.textContent = "";
    try {
      const summary = await post("/simulator/start", {
        patient_id: patient.value,
        instrument: instrument.value,
        continue_if_positive: document.getElementById("continue").checked,
      });
      status.textContent = summary.started ? "Questionnaire sent." :
        "Waiting: this patient already has a questionnaire open.";
    } catch (error) {
      status.textContent = error.message;
    }
    await refresh();
    text.focus();
  });

  document.getElementById("reply").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = text.value;
    text.value = "";
    try {
      await post("/simulator/send", {patient_id: patient.value, text: body});
    } catch (error) {
      status.textContent = error.message;
    }
    await refresh();
  });

  patient.addEventListener("change", () => { shown = ""; refresh(); });
  setInterval(refresh, 1500);
  refresh();
})();
