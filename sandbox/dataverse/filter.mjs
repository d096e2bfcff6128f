// $filter: a recursive-descent parser compiled to closures (row → boolean). Comparisons,
// and/or/not, null, contains/startswith/endswith and Microsoft.Dynamics.CRM.In/NotIn; an In on
// a column tells the query which rows it can be among (`predicate.lookup`), read through an index.
import { badQuery, noProperty, notSupported } from "./errors.mjs";
import { collate, idOrder, likeTest } from "./util.mjs";
import { isoMillis } from "./values.mjs";

const KEYWORDS = new Set(["and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le"]);
const COMPARISONS = { eq: "Equal", ne: "NotEqual", gt: "GreaterThan", ge: "GreaterThanOrEqual", lt: "LessThan", le: "LessThanOrEqual" };
const EXPR_EDM = { String: "Edm.String", Integer: "Edm.Int32", Decimal: "Edm.Decimal", Boolean: "Edm.Boolean", DateTime: "Edm.DateTimeOffset", Date: "Edm.Date", Guid: "Edm.Guid", Null: "null" };
const CATEGORY = { String: "s", Integer: "n", Decimal: "n", Boolean: "b", DateTime: "d", Date: "d", Guid: "g" };
const COLUMN_EXPR_TYPE = { String: "String", Memo: "String", Boolean: "Boolean", DateTime: "DateTime", DateOnly: "Date", Integer: "Integer", Picklist: "Integer", Uniqueidentifier: "Guid" };

const TOKEN_PATTERNS = [
  ["guid", /[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![\w-])/y],
  // a '+' of a zone offset arrives as a space when the client did not percent-encode it
  ["datetime", /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+\- ]\d{2}:\d{2})(?![\w:])/y],
  ["date", /\d{4}-\d{2}-\d{2}(?![\w:-])/y],
  ["number", /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?(?![\w.])/y],
  ["ident", /[A-Za-z_][A-Za-z0-9_.]*/y],
];

/**
 * Dataverse's query functions ("Filter rows using OData", "Dataverse query functions"; the
 * QueryFunctionIndex on Microsoft Learn), but In and NotIn, which the sandbox has.
 */
const DATAVERSE_QUERY_FUNCTIONS = new Set(
  [
    "InFiscalPeriod InFiscalPeriodAndYear InFiscalYear InOrAfterFiscalPeriodAndYear InOrBeforeFiscalPeriodAndYear",
    "Last7Days LastFiscalPeriod LastFiscalYear LastMonth LastWeek LastXDays LastXFiscalPeriods LastXFiscalYears",
    "LastXHours LastXMonths LastXWeeks LastXYears LastYear Next7Days NextFiscalPeriod NextFiscalYear NextMonth NextWeek",
    "NextXDays NextXFiscalPeriods NextXFiscalYears NextXHours NextXMonths NextXWeeks NextXYears NextYear",
    "OlderThanXDays OlderThanXHours OlderThanXMinutes OlderThanXMonths OlderThanXWeeks OlderThanXYears On OnOrAfter",
    "OnOrBefore ThisFiscalPeriod ThisFiscalYear ThisMonth ThisWeek ThisYear Today Tomorrow Yesterday",
    "EqualBusinessId EqualUserId NotEqualBusinessId NotEqualUserId Above AboveOrEqual EqualUserOrUserHierarchy",
    "EqualUserOrUserHierarchyAndTeams EqualUserOrUserTeams EqualUserTeams NotUnder Under UnderOrEqual",
    "ContainValues DoesNotContainValues Between NotBetween EqualUserLanguage Contains DoesNotContain",
  ]
    .join(" ")
    .split(" "),
);

function lex(text) {
  const tokens = [];
  let i = 0;
  const syntax = (at) => badQuery(`Syntax error at position ${at} in '${text}'.`);
  while (i < text.length) {
    const c = text[i];
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      i++;
      continue;
    }
    if ("(),[]=".includes(c)) {
      tokens.push({ kind: c, at: i });
      i++;
      continue;
    }
    if (c === "'") {
      const at = i;
      let s = "";
      let doubled = false;
      i++;
      for (;;) {
        if (i >= text.length) throw badQuery(`There is an unterminated string literal at position ${at} in '${text}'.`);
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            s += "'";
            doubled = true;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        s += text[i++];
      }
      tokens.push({ kind: "string", value: s, at, doubled });
      continue;
    }
    // A JSON string: only an element of a function's array (PropertyValues=["…"]) may be one.
    if (c === '"') {
      const m = /"(?:[^"\\]|\\.)*"/y;
      m.lastIndex = i;
      const found = m.exec(text);
      if (!found) throw badQuery(`There is an unterminated string literal at position ${i} in '${text}'.`);
      let value;
      try {
        value = JSON.parse(found[0]);
      } catch {
        throw badQuery(`Invalid JSON string at position ${i} in '${text}'.`);
      }
      tokens.push({ kind: "json", value, at: i });
      i += found[0].length;
      continue;
    }
    let matched = false;
    for (const [kind, re] of TOKEN_PATTERNS) {
      re.lastIndex = i;
      const m = re.exec(text);
      if (m) {
        tokens.push({ kind, value: m[0], at: i });
        i += m[0].length;
        matched = true;
        break;
      }
    }
    if (!matched) throw syntax(i);
  }
  return tokens;
}

const lit = (type, value) => ({ type, literal: true, ev: () => value });

function compareValues(category, a, b) {
  if (category === "g") {
    // SQL Server's order of uniqueidentifier, not the text's (util.mjs, idOrder)
    const x = idOrder(a);
    const y = idOrder(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (category === "s") {
    const x = collate(a);
    const y = collate(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Compiles `$filter` text for table `t` into a predicate (row → boolean). */
export function compileFilter(t, text) {
  const tokens = lex(text);
  let pos = 0;
  const syntax = (tok) => badQuery(`Syntax error at position ${tok ? tok.at : text.length} in '${text}'.`);
  const peek = () => tokens[pos];
  const isWord = (w) => tokens[pos]?.kind === "ident" && tokens[pos].value === w;
  const expect = (kind) => {
    const tok = tokens[pos];
    if (!tok || tok.kind !== kind) throw syntax(tok);
    pos++;
    return tok;
  };

  function logical(op, left, right) {
    for (const side of [left, right]) {
      if (side.type !== "Boolean")
        throw badQuery(
          `A binary operator with incompatible types was detected. Found operand types '${EXPR_EDM[left.type]}' and '${EXPR_EDM[right.type]}' for operator kind '${op === "and" ? "And" : "Or"}'.`,
        );
    }
    const l = left.ev;
    const r = right.ev;
    if (op === "and") return { type: "Boolean", ev: (row) => l(row) === true && r(row) === true, lookup: left.lookup || right.lookup, range: narrower(left.range, right.range) };
    return { type: "Boolean", ev: (row) => l(row) === true || r(row) === true };
  }

  function compare(op, left, right) {
    const kind = COMPARISONS[op];
    const lc = CATEGORY[left.type];
    const rc = CATEGORY[right.type];
    if (left.type !== "Null" && right.type !== "Null" && lc !== rc)
      throw badQuery(`A binary operator with incompatible types was detected. Found operand types '${EXPR_EDM[left.type]}' and '${EXPR_EDM[right.type]}' for operator kind '${kind}'.`);
    const l = left.ev;
    const r = right.ev;
    if (left.type === "Null" || right.type === "Null") {
      const other = left.type === "Null" ? r : l;
      if (op === "eq") return { type: "Boolean", ev: (row) => other(row) == null };
      if (op === "ne") return { type: "Boolean", ev: (row) => other(row) != null };
      return { type: "Boolean", ev: () => false };
    }
    const category = lc;
    return {
      type: "Boolean",
      range: keyRange(op, left, right),
      ev: (row) => {
        const a = l(row);
        const b = r(row);
        // As Dataverse (SQL): a null value satisfies no comparison, except `ne` which includes it.
        if (a == null || b == null) return op === "ne" ? !(a == null && b == null) : false;
        const c = compareValues(category, a, b);
        switch (op) {
          case "eq":
            return c === 0;
          case "ne":
            return c !== 0;
          case "gt":
            return c > 0;
          case "ge":
            return c >= 0;
          case "lt":
            return c < 0;
          default:
            return c <= 0;
        }
      },
    };
  }

  /**
   * The primary key's bounds a comparison sets (`<key> gt <guid>`, …): the query seeks to them in
   * the key's order instead of reading every row, as SQL Server's clustered index does.
   */
  function keyRange(op, left, right) {
    const flipped = { gt: "lt", ge: "le", lt: "gt", le: "ge" };
    let [key, value, o] = [left, right, op];
    if (!left.column) [key, value, o] = [right, left, flipped[op]];
    if (!key.column || key.column.name !== t.primaryKey || !value.literal || !flipped[o]) return undefined;
    const v = value.ev();
    if (o === "gt" || o === "ge") return { lo: { key: v, inclusive: o === "ge" } };
    return { hi: { key: v, inclusive: o === "le" } };
  }

  /** Both bounds of `a` and `b` (an `and` of them), the tighter of each. */
  function narrower(a, b) {
    if (!a || !b) return a || b;
    const tighter = (x, y, sign) => {
      if (!x || !y) return x || y;
      const c = compareValues("g", x.key, y.key) * sign;
      return c > 0 ? x : c < 0 ? y : { key: x.key, inclusive: x.inclusive && y.inclusive };
    };
    return { lo: tighter(a.lo, b.lo, 1), hi: tighter(a.hi, b.hi, -1) };
  }

  function column(name, tok) {
    const col = t.columns.get(name);
    if (!col) throw noProperty(t, name);
    const type = COLUMN_EXPR_TYPE[col.type];
    let ev;
    if (type === "DateTime" || type === "Date") {
      ev = (row) => {
        const v = row[name];
        if (v == null) return null;
        const ms = isoMillis(v);
        return Number.isNaN(ms) ? null : ms;
      };
    } else if (type === "Guid") {
      ev = (row) => (row[name] == null ? null : String(row[name]).toLowerCase());
    } else {
      ev = (row) => (row[name] === undefined ? null : row[name]);
    }
    return { type, column: col, at: tok.at, ev };
  }

  function stringFunction(name, args) {
    const signature = `${name}(Edm.String Nullable=true, Edm.String Nullable=true)`;
    if (args.length !== 2 || args.some((a) => a.named || (a.expr.type !== "String" && a.expr.type !== "Null")))
      throw badQuery(`No function signature for the function with name '${name}' matches the specified arguments. The function signatures considered are: ${signature}.`);
    const [x, y] = args.map((a) => a.expr.ev);
    // A pattern is usually a literal: compiled once, and again only when it changes.
    let last = null;
    let test = null;
    return {
      type: "Boolean",
      ev: (row) => {
        const a = x(row);
        const b = y(row);
        if (a == null || b == null) return false;
        if (b !== last) [last, test] = [b, likeTest(name, b)];
        return test(a);
      },
    };
  }

  function inFunction(name, args, tok) {
    const named = new Map(args.filter((a) => a.named).map((a) => [a.named, a]));
    const prop = named.get("PropertyName");
    const values = named.get("PropertyValues");
    if (!prop || prop.expr?.type !== "String" || !prop.expr.literal || !values || !values.list)
      throw badQuery(`The function '${name}' needs PropertyName='<column>' and PropertyValues=['…',…].`);
    const colName = prop.expr.ev();
    const col = t.columns.get(colName);
    if (!col) throw noProperty(t, colName);
    const type = COLUMN_EXPR_TYPE[col.type];
    const set = new Set();
    for (const v of values.list) {
      if (v.type !== "String") throw badQuery(`The values of PropertyValues of '${name}' must be string literals.`);
      const raw = v.ev();
      let key;
      if (type === "String") key = collate(raw);
      else if (type === "Integer") key = Number(raw);
      else if (type === "Boolean") key = raw.toLowerCase() === "true";
      else if (type === "Guid") key = raw.toLowerCase();
      else if (type === "DateTime" || type === "Date") key = isoMillis(raw);
      if (key === undefined || Number.isNaN(key)) throw badQuery(`'${raw}' is not a valid value for '${colName}' in '${name}'.`);
      set.add(key);
    }
    const ev = column(colName, tok).ev;
    const negate = name.endsWith("NotIn");
    const keyOf = (row) => {
      const v = ev(row);
      return v != null && type === "String" ? collate(v) : v;
    };
    return {
      type: "Boolean",
      ev: (row) => {
        const v = keyOf(row);
        if (v == null) return false;
        return negate ? !set.has(v) : set.has(v);
      },
      // The rows can only be among those whose column holds one of the values: a query can read
      // them through an index instead of scanning the table, as Dataverse does.
      lookup: negate ? undefined : { column: colName, keyOf, values: set },
    };
  }

  function functionCall(tok) {
    const name = tok.value;
    expect("(");
    const args = [];
    if (peek()?.kind !== ")") {
      for (;;) {
        if (peek()?.kind === "ident" && tokens[pos + 1]?.kind === "=") {
          const argName = tokens[pos].value;
          pos += 2;
          if (peek()?.kind === "[") {
            pos++;
            const list = [];
            if (peek()?.kind !== "]") {
              for (;;) {
                // Dataverse reads the array as JSON: strings in double quotes, or in single
                // quotes without a doubled quote inside ("Filter rows using OData", "Manage
                // single quotes": a doubled one is this error).
                const item = peek();
                if (item?.kind === "string" && item.doubled) {
                  throw badQuery("Invalid JSON. A comma character ',' was expected in scope 'Array'. Every two elements in an array and properties of an object must be separated by commas.");
                }
                if (item?.kind === "json") {
                  pos++;
                  list.push(lit("String", item.value));
                } else list.push(parsePrimary());
                if (peek()?.kind === ",") {
                  pos++;
                  continue;
                }
                break;
              }
            }
            expect("]");
            args.push({ named: argName, list });
          } else {
            args.push({ named: argName, expr: parseOr() });
          }
        } else {
          args.push({ expr: parseOr() });
        }
        if (peek()?.kind === ",") {
          pos++;
          continue;
        }
        break;
      }
    }
    expect(")");
    const lower = name.toLowerCase();
    if (lower === "contains" || lower === "startswith" || lower === "endswith") return stringFunction(lower, args);
    if (name === "Microsoft.Dynamics.CRM.In" || name === "Microsoft.Dynamics.CRM.NotIn") return inFunction(name, args, tok);
    // Dataverse has the function, the sandbox does not: refused by name, never answered wrongly.
    if (name.startsWith("Microsoft.Dynamics.CRM.") && DATAVERSE_QUERY_FUNCTIONS.has(name.slice(23))) {
      throw notSupported(`the query function ${name} (it supports contains, startswith, endswith, Microsoft.Dynamics.CRM.In and NotIn)`);
    }
    throw badQuery(`The function '${name}' is not supported by the sandbox (contains, startswith, endswith, Microsoft.Dynamics.CRM.In and NotIn are).`);
  }

  function parsePrimary() {
    const tok = peek();
    if (!tok) throw syntax(tok);
    pos++;
    switch (tok.kind) {
      case "(": {
        const inner = parseOr();
        expect(")");
        return inner;
      }
      case "string":
        return lit("String", tok.value);
      case "number":
        return /[.eEmMdDfF]/.test(tok.value.replace(/^-/, "")) ? lit("Decimal", parseFloat(tok.value)) : lit("Integer", parseInt(tok.value, 10));
      case "guid":
        return lit("Guid", tok.value.toLowerCase());
      case "datetime": {
        const ms = isoMillis(tok.value.replace(/ (\d{2}:\d{2})$/, "+$1"));
        if (Number.isNaN(ms)) throw badQuery(`'${tok.value}' is not a valid Edm.DateTimeOffset literal.`);
        return lit("DateTime", ms);
      }
      case "date": {
        const ms = isoMillis(tok.value);
        if (Number.isNaN(ms)) throw badQuery(`'${tok.value}' is not a valid Edm.Date literal.`);
        return lit("Date", ms);
      }
      case "ident": {
        if (peek()?.kind === "(") return functionCall(tok);
        if (tok.value === "null") return lit("Null", null);
        if (tok.value === "true") return lit("Boolean", true);
        if (tok.value === "false") return lit("Boolean", false);
        if (KEYWORDS.has(tok.value)) throw syntax(tok);
        if (tok.value.includes(".")) throw syntax(tok);
        return column(tok.value, tok);
      }
      default:
        throw syntax(tok);
    }
  }

  function parseUnary() {
    if (isWord("not")) {
      pos++;
      const operand = parseUnary();
      if (operand.type !== "Boolean")
        throw badQuery(`A unary operator with an incompatible type was detected. Found operand type '${EXPR_EDM[operand.type]}' for operator kind 'Not'.`);
      const ev = operand.ev;
      return { type: "Boolean", ev: (row) => !ev(row) };
    }
    return parsePrimary();
  }

  function parseComparison() {
    let left = parseUnary();
    while (tokens[pos]?.kind === "ident" && COMPARISONS[tokens[pos].value]) {
      const op = tokens[pos].value;
      pos++;
      left = compare(op, left, parseUnary());
    }
    return left;
  }

  function parseAnd() {
    let left = parseComparison();
    while (isWord("and")) {
      pos++;
      left = logical("and", left, parseComparison());
    }
    return left;
  }

  function parseOr() {
    let left = parseAnd();
    while (isWord("or")) {
      pos++;
      left = logical("or", left, parseAnd());
    }
    return left;
  }

  if (tokens.length === 0) throw badQuery(`The $filter query option is empty.`);
  const root = parseOr();
  if (pos < tokens.length) throw syntax(tokens[pos]);
  if (root.type !== "Boolean") throw badQuery(`The $filter expression must evaluate to a single boolean value.`);
  const ev = root.ev;
  const predicate = (row) => ev(row) === true;
  predicate.lookup = root.lookup;
  predicate.range = root.range;
  return predicate;
}
