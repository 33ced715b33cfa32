// SPDX-License-Identifier: Apache-2.0
// Labels in English and German, and how numbers, times and units are written in each.

const TEXTS = {
  en: {
    city: "City",
    domain: "Domain",
    quantity: "Quantity",
    allCities: "All cities",
    allDomains: "All domains",
    allQuantities: "All quantities",
    unknownCity: "no city given",
    unknownDomain: "other",
    energy: "Energy",
    climate: "Climate",
    traffic: "Traffic",
    loading: "Loading sensors …",
    loadFailed: "Could not load the sensors: ",
    things: (n) => `${n} sensor site${n === 1 ? "" : "s"} on the map`,
    pickThing: "Click a sensor site on the map to see its measurements.",
    noValue: "no value yet",
    noData: "No measurements in this period.",
    measurement: "Measurement",
    latest: "Latest value",
    time: "Time",
    legend: (name) => `Colour: latest ${name}`,
    legendNone: "Choose a quantity to colour the sites by their latest value.",
    range: { "6h": "6 hours", "24h": "24 hours", "7d": "7 days", "30d": "30 days", "365d": "1 year" },
    raw: (n) => `${n} measurements. Drag across the chart to zoom in.`,
    buckets: (n, size) =>
      `Too many measurements to draw one by one: lowest and highest value per ${size} (${n} periods). Drag across the chart to zoom in.`,
    resetZoom: "Back to the whole period",
    min: "lowest",
    max: "highest",
    value: "value",
    liveOn: "live",
    liveOff: "live updates paused, reconnecting …",
    liveCount: (n) => `live: ${n} new`,
    otherLanguage: "Deutsch",
    directions: { lft: "left", rgt: "right", total: "total" },
  },
  de: {
    city: "Stadt",
    domain: "Bereich",
    quantity: "Messgröße",
    allCities: "Alle Städte",
    allDomains: "Alle Bereiche",
    allQuantities: "Alle Messgrößen",
    unknownCity: "ohne Stadtangabe",
    unknownDomain: "Sonstiges",
    energy: "Energie",
    climate: "Klima",
    traffic: "Verkehr",
    loading: "Sensoren werden geladen …",
    loadFailed: "Die Sensoren konnten nicht geladen werden: ",
    things: (n) => `${n} Messort${n === 1 ? "" : "e"} auf der Karte`,
    pickThing: "Klicken Sie auf einen Messort in der Karte, um seine Messwerte zu sehen.",
    noValue: "noch kein Wert",
    noData: "Keine Messwerte in diesem Zeitraum.",
    measurement: "Messung",
    latest: "Letzter Wert",
    time: "Zeit",
    legend: (name) => `Farbe: letzter Wert ${name}`,
    legendNone: "Wählen Sie eine Messgröße, um die Messorte nach ihrem letzten Wert einzufärben.",
    range: { "6h": "6 Stunden", "24h": "24 Stunden", "7d": "7 Tage", "30d": "30 Tage", "365d": "1 Jahr" },
    raw: (n) => `${n} Messwerte. Ziehen Sie über das Diagramm, um hineinzuzoomen.`,
    buckets: (n, size) =>
      `Zu viele Messwerte zum Einzelzeichnen: niedrigster und höchster Wert je ${size} (${n} Abschnitte). Ziehen Sie über das Diagramm, um hineinzuzoomen.`,
    resetZoom: "Zurück zum ganzen Zeitraum",
    min: "niedrigster",
    max: "höchster",
    value: "Wert",
    liveOn: "live",
    liveOff: "Live-Aktualisierung unterbrochen, verbinde neu …",
    liveCount: (n) => `live: ${n} neu`,
    otherLanguage: "English",
    directions: { lft: "links", rgt: "rechts", total: "gesamt" },
  },
};

let language = (navigator.language || "en").toLowerCase().startsWith("de") ? "de" : "en";

export function getLanguage() {
  return language;
}

export function setLanguage(next) {
  language = next in TEXTS ? next : "en";
  document.documentElement.lang = language;
}

/** The text `key` in the current language; functions are called with `args`. */
export function t(key, ...args) {
  const text = TEXTS[language][key] ?? TEXTS.en[key] ?? key;
  return typeof text === "function" ? text(...args) : text;
}

export function formatNumber(value) {
  if (typeof value !== "number") return value == null ? "" : String(value);
  const digits = Math.abs(value) < 100 ? 2 : Math.abs(value) < 1000 ? 1 : 0;
  return new Intl.NumberFormat(language, { maximumFractionDigits: digits }).format(value);
}

export function formatTime(date) {
  return new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle: "short" }).format(date);
}

/** A label of the time axis (seconds): the time of day for short spans, else the date. */
export function formatTick(seconds, ticks) {
  const span = ticks.length > 1 ? ticks[ticks.length - 1] - ticks[0] : 0;
  const options = span > 2 * 86400 ? { day: "numeric", month: "numeric" } : { hour: "2-digit", minute: "2-digit" };
  return new Intl.DateTimeFormat(language, options).format(new Date(seconds * 1000));
}

export function formatDuration(ms) {
  const minutes = Math.round(ms / 60000);
  const unit = (n, en, de) => `${n} ${language === "de" ? de : en}`;
  if (minutes < 120) return unit(minutes, "min", "Min.");
  const hours = Math.round(minutes / 60);
  if (hours < 48) return unit(hours, "h", "Std.");
  return unit(Math.round(hours / 24), "days", "Tage");
}

/**
 * What tells apart Datastreams of one quantity at one Thing (Datastream.properties.stream):
 * `car_lft` is "left", `car_rgt` "right", `car` beside them the total; other keys as they are.
 */
export function streamLabel(stream, siblings) {
  const directions = t("directions");
  const cut = stream ? stream.lastIndexOf("_") : -1;
  if (cut > 0 && stream.slice(cut + 1) in directions) return directions[stream.slice(cut + 1)];
  if (stream && siblings.some((other) => other?.startsWith(`${stream}_`))) return directions.total;
  return stream ?? directions.total;
}

// UCUM codes (what SensorThings unitOfMeasurement.symbol usually holds) as people write them.
const UNIT_SYMBOLS = {
  Cel: "°C",
  "%": "%",
  "ug/m3": "µg/m³",
  "ug.m-3": "µg/m³",
  "kW.h": "kWh",
  "W.h": "Wh",
  "m/s": "m/s",
  "m3": "m³",
};

/** A readable unit from a unitOfMeasurement: °C for Cel, annotations like {vehicles} unwrapped. */
export function unitLabel(unit) {
  const symbol = unit?.symbol ?? "";
  return UNIT_SYMBOLS[symbol] ?? symbol.replace(/[{}]/g, "");
}
