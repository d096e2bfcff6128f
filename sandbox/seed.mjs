// Demo data: varied Dynamics contacts (Polish and English names, awkward and invalid values),
// and a SALESmanago account holding some of the same people with different values. The same
// `count` always gives the same data.

/** A small seeded PRNG (mulberry32), so the demo is reproducible. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = ["Anna", "Jan", "Katarzyna", "Piotr", "Małgorzata", "Krzysztof", "Agnieszka", "Tomasz", "Zofia", "Łukasz", "Emma", "Oliver", "Sophie", "James", "Grace", "Henry", "Mia", "Noah", "Żaneta", "Wojciech"];
const LAST = ["Kowalska", "Nowak", "Wiśniewski", "Wójcik", "Kamińska", "Lewandowski", "Zieliński", "Szymańska", "Dąbrowski", "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Grzegorczyk", "Błaszczykowski"];
const CITIES = [
  ["Warszawa", "00-001", "Poland"],
  ["Kraków", "30-001", "Poland"],
  ["Gdańsk", "80-001", "Poland"],
  ["Wrocław", "50-001", "Poland"],
  ["Poznań", "60-001", "Poland"],
  ["London", "SW1A 1AA", "United Kingdom"],
  ["Manchester", "M1 1AE", "United Kingdom"],
  ["Berlin", "10115", "Germany"],
];
const STREETS = ["ul. Marszałkowska 1", "ul. Długa 15/3", "al. Jerozolimskie 100", "10 Downing Street", "221B Baker Street", "Unter den Linden 5", "ul. Świętokrzyska 7"];

const ASCII = { ą: "a", ć: "c", ę: "e", ł: "l", ń: "n", ó: "o", ś: "s", ź: "z", ż: "z" };
function slug(text) {
  return text.toLowerCase().replace(/[ąćęłńóśźż]/g, (c) => ASCII[c]).replace(/[^a-z]/g, "");
}

/** `count` Dynamics contact rows (Web API column names), with fixed ids. */
export function demoContacts(count) {
  const next = random(20261122);
  const pick = (list) => list[Math.floor(next() * list.length)];
  const JOBS = ["Sales Manager", "Buyer", "CEO", null, "Office Manager"];
  const rows = [];
  for (let i = 0; i < count; i++) {
    const first = pick(FIRST);
    const last = pick(LAST);
    const [city, postal, country] = pick(CITIES);
    const id = `00000000-0000-4000-8000-${String(i + 1).padStart(12, "0")}`;
    const roll = next();
    let email = `${slug(first)}.${slug(last)}${i + 1}@example.com`;
    if (roll < 0.04) email = null; // no e-mail: cannot be sent
    else if (roll < 0.06) email = `${slug(first)}.${slug(last)}@`; // invalid
    else if (roll < 0.1) email = `  ${email.toUpperCase()} `; // upper case, padded
    const row = {
      contactid: id,
      firstname: first,
      lastname: last,
      emailaddress1: email,
      mobilephone: next() < 0.8 ? `+48 ${500 + Math.floor(next() * 300)} ${String(Math.floor(next() * 1e6)).padStart(6, "0")}` : null,
      telephone1: next() < 0.3 ? `+44 20 7946 ${String(Math.floor(next() * 1e4)).padStart(4, "0")}` : null,
      fax: next() < 0.1 ? "+48 22 123 45 67" : null,
      birthdate: next() < 0.6 ? `19${60 + Math.floor(next() * 40)}-${String(1 + Math.floor(next() * 12)).padStart(2, "0")}-${String(1 + Math.floor(next() * 28)).padStart(2, "0")}` : null,
      address1_line1: next() < 0.85 ? pick(STREETS) : null,
      address1_line2: null,
      address1_line3: null,
      address1_city: city,
      address1_postalcode: postal,
      address1_country: country,
      donotbulkemail: next() < 0.1,
      new_donotsms: next() < 0.05,
      new_consent_marketing: roll < 0.6 ? true : roll < 0.8 ? false : null,
      // Derived from the index, not drawn: the draws above stay as they were.
      jobtitle: JOBS[i % JOBS.length],
      preferredcontactmethodcode: i % 7 === 0 ? null : 1 + (i % 5),
      numberofchildren: i % 4 === 0 ? null : i % 3,
      new_customerno: i % 5 === 0 ? null : `C-${String(10000 + i)}`,
      new_marketingcontact: i % 3 !== 0,
    };
    if (i % 97 === 13) row.lastname = `${last} ${"-".repeat(5)} ${"very long name ".repeat(15)}`.slice(0, 50);
    if (i % 89 === 7) row.firstname = "<b>Bold</b>";
    rows.push(row);
  }
  return rows;
}

function trimmedEmail(row) {
  const email = row.emailaddress1 && row.emailaddress1.trim().toLowerCase();
  return email && /^[^@\s]+@[^@\s]+\.[a-z]+$/.test(email) ? email : null;
}

/**
 * SALESmanago contacts (simulator seed items): about 40% of the contacts with a valid e-mail,
 * a third of those with different values or consents, plus a few only SALESmanago holds.
 */
export function demoSalesmanago(rows) {
  const next = random(7);
  const out = [];
  const base = Date.UTC(2026, 9, 1);
  rows.forEach((row, i) => {
    const email = trimmedEmail(row);
    if (!email || next() >= 0.4) return;
    const differs = next() < 0.35;
    const [city, postal, country] = CITIES[i % CITIES.length];
    out.push({
      email,
      name: `${row.firstname} ${row.lastname}`,
      phone: differs ? "+48 600 000 000" : row.mobilephone,
      fax: row.fax,
      address: differs ? { streetAddress: "ul. Nowa 1", zipCode: postal, city, country } : { streetAddress: row.address1_line1, zipCode: row.address1_postalcode, city: row.address1_city, country: row.address1_country },
      optedOut: differs ? !row.donotbulkemail : row.donotbulkemail,
      optedOutPhone: row.new_donotsms,
      consents: [{ consentName: "MARKETING", consentAccept: differs ? row.new_consent_marketing !== true : row.new_consent_marketing === true }],
      // What marketing knows: a score, a state, a last visit (not drawn, so the rest stays as it was).
      score: (i * 37) % 120,
      state: ["PROSPECT", "CUSTOMER", "PARTNER"][i % 3],
      lastVisit: base + ((i * 7919) % 60) * 86_400_000,
      modifiedOn: base + i * 60_000,
      createdOn: base,
    });
  });
  for (let i = 0; i < 5; i++) {
    out.push({ email: `only.in.salesmanago${i + 1}@example.com`, name: `SALESmanago Only ${i + 1}`, optedOut: false, modifiedOn: base + i * 1000, createdOn: base });
  }
  return out;
}
