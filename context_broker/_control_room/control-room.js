// The control room page: signs in, draws the tenant's comune and entities on the map,
// lists its alerts, and follows its changes live. It speaks only the NGSI-LD API and the
// control room's routes (api/...), with the operator's key, as any client would.
"use strict";

(function () {
  const WORDS = {
    it: {
      title: "Sala di controllo", signInTitle: "Accesso", signIn: "Entra", signOut: "Esci",
      keyLabel: "Chiave API dell'ente", tenantLabel: "Ente (tenant)",
      detailsTitle: "Dettagli", detailsEmpty: "Seleziona un elemento sulla mappa.",
      alertsTitle: "Allerte", alertsEmpty: "Nessuna allerta.",
      online: "In linea", offline: "Non in linea", wrongKey: "Chiave non valida per questo ente.",
      noKey: "Inserisci la chiave API.", failed: "Richiesta non riuscita",
      boundary: "Confine comunale", defaultTenant: "(predefinito)",
      sharedBy: "condivisa da", type: "Tipo", noBoundary: "Nessun confine per questo ente.",
      other: "Altra lingua", newAlert: "Nuova allerta", save: "Salva", cancel: "Annulla",
      placeAlert: "Fai clic sulla mappa nel punto dell'allerta.", category: "Categoria",
      subCategory: "Sottocategoria", severity: "Gravità", description: "Descrizione",
      validFrom: "Valida dal", validTo: "Valida fino al", all: "tutte",
      cannotWrite: "Questa chiave non può creare allerte (serve una chiave writer).",
    },
    en: {
      title: "Control room", signInTitle: "Sign in", signIn: "Sign in", signOut: "Sign out",
      keyLabel: "Tenant API key", tenantLabel: "Tenant",
      detailsTitle: "Details", detailsEmpty: "Select an item on the map.",
      alertsTitle: "Alerts", alertsEmpty: "No alerts.",
      online: "Online", offline: "Offline", wrongKey: "The key is not valid for this tenant.",
      noKey: "Enter the API key.", failed: "Request failed",
      boundary: "Comune boundary", defaultTenant: "(default)",
      sharedBy: "shared by", type: "Type", noBoundary: "No boundary for this tenant.",
      other: "Other language", newAlert: "New alert", save: "Save", cancel: "Cancel",
      placeAlert: "Click the map where the alert is.", category: "Category",
      subCategory: "Subcategory", severity: "Severity", description: "Description",
      validFrom: "Valid from", validTo: "Valid to", all: "all",
      cannotWrite: "This key cannot create alerts (a writer key is needed).",
    },
  };
  // UN/CEFACT common codes of the observed values the Smart Data Models use most.
  const UNITS = {
    GQ: "µg/m³", GP: "mg/m³", CEL: "°C", P1: "%", KMH: "km/h", MTS: "m/s", A97: "hPa",
    MTR: "m", KGM: "kg", KWH: "kWh", KWT: "kW", LTR: "l", MTQ: "m³", E32: "l/h", "2N": "dB",
  };
  // The EU limits (Directive 2008/50/EC): annual mean, then the short-term limit, µg/m³.
  const LIMITS = { no2: [40, 200], NO2: [40, 200], pm10: [40, 50], PM10: [40, 50],
    pm25: [25, 25], "pm2.5": [25, 25], o3: [120, 180] };
  const SYSTEM = new Set(["id", "type", "@context", "location", "createdAt", "modifiedAt"]);

  const state = {
    lang: localStorage.getItem("controlRoom.lang") || "it",
    config: null, key: "", tenant: "", map: null, boundary: null,
    layers: {}, layerControl: null, markers: {}, entities: {}, selected: null,
    resync: null, wasOnline: false, placing: null,
  };

  const $ = (id) => document.getElementById(id);
  const t = (word) => WORDS[state.lang][word] || word;

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    document.querySelectorAll("[data-i18n]").forEach((el) => {
      el.textContent = t(el.dataset.i18n);
    });
    const other = state.lang === "it" ? "en" : "it";
    $("language").textContent = other === "en" ? "English" : "Italiano";
    $("language").lang = other;
    $("language").setAttribute("aria-label", t("other"));
    setStatus($("status").dataset.state);
    if (state.selected) showDetails(state.selected);
    renderAlerts();
  }

  function setStatus(which) {
    $("status").dataset.state = which;
    $("status").textContent = t(which);
  }

  function headers(extra) {
    const h = Object.assign({ Accept: "application/json" }, extra || {});
    if (state.key) h.Authorization = "Bearer " + state.key;
    if (state.tenant) h["NGSILD-Tenant"] = state.tenant;
    return h;
  }

  async function api(path, options) {
    const base = path.startsWith("api/") ? "" : state.config.apiPath;
    const answer = await fetch(base + path, Object.assign({ headers: headers() }, options || {}));
    if (!answer.ok) {
      const error = new Error(t("failed") + " (" + answer.status + ")");
      error.status = answer.status;
      throw error;
    }
    return answer.status === 204 ? null : answer.json();
  }

  // A key names its tenant: ctk_<tenant>_<secret> (regional_tenants/_keys.py).
  function tenantOfKey(key) {
    if (!key.startsWith("ctk_")) return "";
    return key.slice(4).split("_")[0];
  }

  async function signIn(event) {
    event.preventDefault();
    $("sign-in-error").textContent = "";
    const regional = state.config.profile === "regional";
    const key = $("key").value.trim();
    if (regional && !key) {
      $("sign-in-error").textContent = t("noKey");
      return;
    }
    state.key = regional ? key : "";
    const typed = $("tenant").value.trim();
    state.tenant = typed === t("defaultTenant") ? "" : typed || tenantOfKey(key);
    try {
      await api("/types");
    } catch (error) {
      state.key = "";
      $("sign-in-error").textContent =
        error.status === 401 || error.status === 403 ? t("wrongKey") : error.message;
      return;
    }
    sessionStorage.setItem("controlRoom.session", JSON.stringify([state.key, state.tenant]));
    await enterRoom();
  }

  function signOut() {
    sessionStorage.removeItem("controlRoom.session");
    location.reload();
  }

  async function enterRoom() {
    $("sign-in").hidden = true;
    $("room").hidden = false;
    $("sign-out").hidden = false;
    $("tenant-name").textContent = state.tenant || t("defaultTenant");
    state.map = L.map("map", { zoomControl: true, keyboard: true }).setView([43.77, 11.25], 11);
    if (state.config.tileUrl) {
      L.tileLayer(state.config.tileUrl, { maxZoom: 19 }).addTo(state.map);
    }
    state.layerControl = L.control.layers(null, {}, { collapsed: false }).addTo(state.map);
    await drawBoundary();
    await loadAll();
    follow();
    state.resync = setInterval(loadAll, state.config.resyncS * 1000);
    state.map.on("click", placeAlert);
    // "x minutes ago" moves on while nothing changes.
    setInterval(() => {
      if (state.selected) showDetails(state.selected);
      renderAlerts();
    }, 30000);
  }

  // Creating an alert: the operator clicks "new alert", then the map, then fills the form.
  function startAlert() {
    $("new-alert-hint").hidden = false;
    $("map").classList.add("placing");
    state.placing = "waiting";
  }

  function placeAlert(event) {
    if (state.placing === null) return;
    state.placing = event.latlng;
    $("new-alert-hint").hidden = true;
    $("map").classList.remove("placing");
    $("alert-error").textContent = "";
    $("alert-form").hidden = false;
    $("alert-category").focus();
  }

  function closeAlertForm() {
    state.placing = null;
    $("alert-form").hidden = true;
    $("new-alert-hint").hidden = true;
    $("map").classList.remove("placing");
  }

  function isoOf(localInput) {
    return localInput.value ? new Date(localInput.value).toISOString() : null;
  }

  async function saveAlert(event) {
    event.preventDefault();
    const where = state.placing;
    if (!where || where === "waiting") return;
    const property = (value) => ({ type: "Property", value });
    const alert = {
      id: "urn:ngsi-ld:Alert:" + (state.tenant || "default") + "-" + Date.now().toString(36),
      type: "Alert",
      category: property($("alert-category").value),
      severity: property($("alert-severity").value),
      dateIssued: property(new Date().toISOString()),
      alertSource: property("control-room"),
      location: { type: "GeoProperty", value: { type: "Point", coordinates: [where.lng, where.lat] } },
    };
    const optional = {
      subCategory: $("alert-subcategory").value.trim(),
      description: $("alert-description").value.trim(),
      validFrom: isoOf($("alert-from")),
      validTo: isoOf($("alert-to")),
    };
    for (const [name, value] of Object.entries(optional)) {
      if (value) alert[name] = property(value);
    }
    try {
      await api("/entities", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify(alert),
      });
    } catch (error) {
      $("alert-error").textContent = error.status === 403 ? t("cannotWrite") : error.message;
      return;
    }
    closeAlertForm();
    $("alert-form").reset();
    await refresh(alert.id);
  }

  async function drawBoundary() {
    let feature;
    try {
      feature = await api("api/boundary");
    } catch (error) {
      return;
    }
    state.boundary = L.geoJSON(feature, {
      className: "comune-boundary",
      style: { color: "#0b4f7c", weight: 2, fillOpacity: 0.06 },
    }).addTo(state.map);
    state.layerControl.addOverlay(state.boundary, t("boundary"));
    state.map.fitBounds(state.boundary.getBounds());
  }

  async function loadAll() {
    let types;
    try {
      types = (await api("/types")).typeList || [];
    } catch (error) {
      return;
    }
    const seen = new Set();
    for (const type of types) {
      const entities = await api("/entities?limit=1000&options=sysAttrs&type=" +
        encodeURIComponent(type));
      entities.forEach((entity) => { seen.add(entity.id); place(entity); });
    }
    Object.keys(state.entities).forEach((id) => { if (!seen.has(id)) forget(id); });
    renderAlerts();
  }

  async function refresh(id) {
    try {
      place(await api("/entities/" + encodeURIComponent(id) + "?options=sysAttrs"));
    } catch (error) {
      if (error.status === 404) forget(id);
    }
  }

  function layerOf(type) {
    if (!state.layers[type]) {
      state.layers[type] = L.layerGroup().addTo(state.map);
      state.layerControl.addOverlay(state.layers[type], type);
    }
    return state.layers[type];
  }

  function valueOf(attribute) {
    if (attribute === null || typeof attribute !== "object" || Array.isArray(attribute)) {
      return attribute;
    }
    if ("value" in attribute) return attribute.value;
    if ("object" in attribute) return attribute.object;
    if ("languageMap" in attribute) return attribute.languageMap;
    return attribute;
  }

  // good, fair or bad for the values with a known scale; other for the rest.
  function levelOf(entity) {
    for (const name of Object.keys(LIMITS)) {
      const value = valueOf(entity[name]);
      if (typeof value === "number") {
        const [annual, shortTerm] = LIMITS[name];
        return value <= annual ? "good" : value <= shortTerm ? "fair" : "bad";
      }
    }
    const status = valueOf(entity.status);
    if (status === "free") return "good";
    if (status === "occupied") return "bad";
    const available = valueOf(entity.availableSpotNumber);
    if (typeof available === "number") return available > 0 ? "good" : "bad";
    const severity = valueOf(entity.severity);
    if (typeof severity === "string") {
      return { low: "good", medium: "fair", high: "bad", critical: "bad" }[severity] || "other";
    }
    return "other";
  }

  function place(entity) {
    state.entities[entity.id] = entity;
    const geometry = valueOf(entity.location);
    const old = state.markers[entity.id];
    if (old) old.remove();
    delete state.markers[entity.id];
    if (geometry && geometry.type === "Point") {
      const [lon, lat] = geometry.coordinates;
      const icon = L.divIcon({
        className: "",
        html: '<div class="entity-marker level-' + levelOf(entity) + '"></div>',
        iconSize: [14, 14],
      });
      const marker = L.marker([lat, lon], { icon, title: entity.id, keyboard: true });
      marker.on("click", () => showDetails(entity.id));
      marker.addTo(layerOf(entity.type));
      marker.getElement().dataset.entityId = entity.id;
      marker.getElement().dataset.level = levelOf(entity);
      state.markers[entity.id] = marker;
    } else if (geometry && geometry.type) {
      const shape = L.geoJSON(geometry, { style: { color: "#b3261e", weight: 3 } });
      shape.on("click", () => showDetails(entity.id));
      shape.addTo(layerOf(entity.type));
      state.markers[entity.id] = shape;
    }
    if (state.selected === entity.id) showDetails(entity.id);
    if (entity.type === "Alert") renderAlerts();
  }

  function forget(id) {
    const marker = state.markers[id];
    if (marker) marker.remove();
    const wasAlert = state.entities[id] && state.entities[id].type === "Alert";
    delete state.markers[id];
    delete state.entities[id];
    if (state.selected === id) {
      state.selected = null;
      $("details-body").textContent = "";
      $("details-empty").hidden = false;
    }
    if (wasAlert) renderAlerts();
  }

  function ago(iso) {
    const seconds = (Date.parse(iso) - Date.now()) / 1000;
    const format = new Intl.RelativeTimeFormat(state.lang, { numeric: "auto" });
    const steps = [[60, "second"], [3600, "minute"], [86400, "hour"], [Infinity, "day"]];
    let unit = 1;
    for (const [limit, name] of steps) {
      if (Math.abs(seconds) < limit) return format.format(Math.round(seconds / unit), name);
      unit = limit;
    }
    return iso;
  }

  function shown(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function showDetails(id) {
    const entity = state.entities[id];
    if (!entity) return;
    state.selected = id;
    $("details-empty").hidden = true;
    const body = $("details-body");
    body.textContent = "";
    const title = document.createElement("h3");
    title.textContent = id;
    body.appendChild(title);
    const list = document.createElement("dl");
    const row = (name, text, when) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.dataset.attribute = name;
      dd.textContent = text;
      if (when) {
        const small = document.createElement("div");
        small.className = "when";
        small.textContent = ago(when);
        small.title = when;
        dd.appendChild(small);
      }
      list.append(dt, dd);
    };
    row(t("type"), entity.type);
    for (const [name, attribute] of Object.entries(entity)) {
      if (SYSTEM.has(name)) continue;
      const unit = attribute && attribute.unitCode;
      const text = shown(valueOf(attribute)) + (unit ? " " + (UNITS[unit] || unit) : "");
      row(name, text, attribute && (attribute.observedAt || attribute.modifiedAt));
    }
    body.appendChild(list);
  }

  function issuedAt(alert) {
    return valueOf(alert.dateIssued) || alert.createdAt || "";
  }

  function renderAlerts() {
    const list = $("alerts-list");
    list.textContent = "";
    const all = Object.values(state.entities).filter((e) => e.type === "Alert");
    const categories = new Set(all.map((alert) => shown(valueOf(alert.category))));
    const picker = $("filter-category");
    const picked = picker.value;
    while (picker.options.length > 1) picker.remove(1);
    for (const category of [...categories].sort()) picker.add(new Option(category, category));
    picker.value = categories.has(picked) ? picked : "";
    const wanted = $("filter-severity").value;
    const alerts = all.filter((alert) =>
      (!picker.value || shown(valueOf(alert.category)) === picker.value) &&
      (!wanted || shown(valueOf(alert.severity)) === wanted));
    alerts.sort((a, b) => (issuedAt(a) < issuedAt(b) ? 1 : issuedAt(a) > issuedAt(b) ? -1 : 0));
    $("alerts-empty").hidden = alerts.length > 0;
    for (const alert of alerts) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.entityId = alert.id;
      const severity = shown(valueOf(alert.severity));
      const parts = [
        shown(valueOf(alert.category)) + (alert.subCategory ? " / " +
          shown(valueOf(alert.subCategory)) : ""),
      ];
      const head = document.createElement("span");
      head.className = "severity severity-" + severity;
      head.textContent = severity + " ";
      button.appendChild(head);
      button.appendChild(document.createTextNode(parts.join("")));
      const sharer = valueOf(alert.sharedBy);
      const extra = document.createElement("div");
      extra.className = "when";
      extra.textContent = (sharer ? t("sharedBy") + " " + shown(sharer) + " · " : "") +
        (issuedAt(alert) ? ago(issuedAt(alert)) : "");
      button.appendChild(extra);
      button.addEventListener("click", () => {
        const marker = state.markers[alert.id];
        if (marker && marker.getLatLng) state.map.flyTo(marker.getLatLng(), 15);
        else if (marker && marker.getBounds) state.map.flyToBounds(marker.getBounds());
        showDetails(alert.id);
      });
      item.appendChild(button);
      list.appendChild(item);
    }
  }

  // Server-Sent Events over fetch, which can send the key (EventSource cannot). A stream
  // is given up when the browser goes offline, or when nothing (not even the server's
  // keepalive, every 15 s) came for SILENCE_MS: a connection can die without a word.
  const SILENCE_MS = 40000;

  async function follow() {
    for (;;) {
      const stop = new AbortController();
      const giveUp = () => stop.abort();
      let silence = setTimeout(giveUp, SILENCE_MS);
      window.addEventListener("offline", giveUp);
      try {
        const answer = await fetch("api/events", {
          headers: headers({ Accept: "text/event-stream" }),
          signal: stop.signal,
        });
        if (!answer.ok) throw new Error(String(answer.status));
        const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          clearTimeout(silence);
          silence = setTimeout(giveUp, SILENCE_MS);
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            await onEvent(block);
          }
        }
      } catch (error) {
        // Shown as offline below; the next attempt follows.
      } finally {
        clearTimeout(silence);
        window.removeEventListener("offline", giveUp);
      }
      setStatus("offline");
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  async function onEvent(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trim());
    }
    if (name === "ready") {
      setStatus("online");
      // A stream opened again may have missed changes: read everything once.
      if (state.wasOnline) await loadAll();
      state.wasOnline = true;
    } else if (name === "changes") {
      const body = JSON.parse(data.join("\n"));
      if (body.lost) {
        await loadAll();
        return;
      }
      await Promise.all(body.changes.map((change) =>
        change.deleted ? forget(change.id) : refresh(change.id)));
    }
  }

  async function start() {
    applyLanguage();
    $("language").addEventListener("click", () => {
      state.lang = state.lang === "it" ? "en" : "it";
      localStorage.setItem("controlRoom.lang", state.lang);
      applyLanguage();
    });
    $("sign-out").addEventListener("click", signOut);
    $("new-alert").addEventListener("click", startAlert);
    $("alert-cancel").addEventListener("click", closeAlertForm);
    $("alert-form").addEventListener("submit", saveAlert);
    $("filter-category").addEventListener("change", renderAlerts);
    $("filter-severity").addEventListener("change", renderAlerts);
    state.config = await (await fetch("api/config")).json();
    if (state.config.profile === "regional") {
      $("key-field").hidden = false;
    } else {
      try {
        const names = await (await fetch("api/tenants")).json();
        for (const name of [t("defaultTenant")].concat(names)) {
          const option = document.createElement("option");
          option.value = name;
          $("tenant-list").appendChild(option);
        }
      } catch (error) {
        // The picker stays a text field.
      }
    }
    $("sign-in-form").addEventListener("submit", signIn);
    const saved = sessionStorage.getItem("controlRoom.session");
    if (saved) {
      [state.key, state.tenant] = JSON.parse(saved);
      await enterRoom();
    }
  }

  start();
})();
