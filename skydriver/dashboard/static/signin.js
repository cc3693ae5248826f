// Local sign-in: exchange the one-time code in the link's fragment (#code=...) for a session cookie.
const box = document.getElementById("local");
const status = document.getElementById("signin-status");
const params = new URLSearchParams(window.location.hash.slice(1));
const code = params.get("code");

async function exchange() {
  // the code leaves the address bar and the history at once: it works only once anyway
  history.replaceState(null, "", window.location.pathname + window.location.search);
  status.textContent = "Signing in…";
  const resp = await fetch("/dashboard/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code, next: box.dataset.next }),
    credentials: "same-origin",
  });
  const data = await resp.json().catch(() => ({}));
  if (resp.ok) {
    window.location.replace(data.next || "/dashboard");
    return;
  }
  status.textContent = data.error || `sign-in failed (${resp.status})`;
  status.className = "error";
}

if (code) exchange();
