/**
 * Guest-side setup, evaluated in every fresh interpreter before the run. It receives three raw
 * host functions and keeps them in a closure, so guest code can never reach them directly:
 *   hostLog(text)      – one captured console line
 *   hostBreach(what)   – the guest went over its host-call budget; the host ends the run
 *   settle(ok, text)   – the run's outcome: JSON text of the value, or an error description
 * and returns [start, deliver, drain] to the host:
 *   start(code, toolNamesJson, maxCalls, maxArgChars, secretNamesJson) – builds `console`, `tools`
 *                      and `secrets` (NAME → "{{secret:NAME}}", only names: values never enter), runs the code
 *   drain()            – host calls queued since the last drain, as JSON {"n": [id, name, argsJson]}
 *   deliver(batchJson) – answers [[id, 1, value] | [id, 0, message], ...]; settles their promises
 * Host calls are queued here and collected once per slice of guest execution, because each
 * guest→host function call is expensive in quickjs-emscripten while one drain per slice is not.
 * All marshalling (JSON of results and arguments, formatting thrown values) happens here, inside
 * the interpreter, under its deadline and memory cap. The host only ever reads primitive strings,
 * so guest getters, Proxies, toJSON or toString never run on the host side. The guest may tamper
 * with anything this sets up; that only changes what it reports about itself, and the host
 * re-checks every queued call.
 */
export const PRELUDE_SOURCE = String.raw`(function (hostLog, hostBreach, settle) {
  'use strict';
  const stringify = JSON.stringify, parse = JSON.parse, Str = String, isFiniteNum = Number.isFinite;
  const AsyncFunction = (async function () {}).constructor;
  const freeze = Object.freeze, defineProperty = Object.defineProperty, create = Object.create;
  const MapCtor = Map, SetCtor = Set, PromiseCtor = Promise, ErrorCtor = Error, then = Promise.prototype.then;

  function jsonReplacer(key, value) {
    const t = typeof value;
    if (t === 'function' || t === 'symbol') throw new TypeError('a ' + t + ' is not a JSON value' + (key ? ' (at key "' + key + '")' : ''));
    if (t === 'number' && !isFiniteNum(value)) throw new TypeError(Str(value) + ' is not a JSON value' + (key ? ' (at key "' + key + '")' : ''));
    if (value instanceof MapCtor || value instanceof SetCtor) throw new TypeError('a Map or Set is not a JSON value; convert it first (Object.fromEntries, Array.from)');
    return value;
  }
  function format(v) {
    if (typeof v === 'string') return v;
    try { const s = stringify(v); if (typeof s === 'string') return s; } catch (e) {}
    try { return Str(v); } catch (e) { return '[unprintable]'; }
  }
  // Error descriptions are kept short: a deep recursion's stack trace alone can run to megabytes.
  function clip(s, n) { return s.length > n ? s.slice(0, n) + '…' : s; }
  function describe(e) {
    try {
      if (e instanceof Error) {
        const head = clip(Str(e.name) + ': ' + Str(e.message), 2000);
        const stack = typeof e.stack === 'string' ? clip(e.stack, 2000) : '';
        return stack ? head + '\n' + stack : head;
      }
      return 'Uncaught ' + clip(format(e), 2000);
    } catch (inner) {
      return 'Uncaught unprintable value';
    }
  }

  const levels = ['log', 'info', 'debug', 'warn', 'error'];
  const con = {};
  for (let i = 0; i < levels.length; i++) {
    const prefix = i < 3 ? '' : '[' + levels[i] + '] ';
    con[levels[i]] = function () {
      let line = prefix;
      for (let j = 0; j < arguments.length; j++) line += (j ? ' ' : '') + format(arguments[j]);
      hostLog(line);
    };
  }
  defineProperty(globalThis, 'console', { value: freeze(con), writable: true, configurable: true });

  // Null-prototype records, so no setter the guest adds to Object.prototype sees them.
  const waiting = create(null);
  let queue = create(null), queued = 0, calls = 0, maxCalls = 0, maxArgChars = 0;

  // Deliberately not an async function: QuickJS turns an interrupt inside an async function into a
  // rejected promise, which a guest calling tools in a tight loop would never look at.
  function makeTool(name) {
    return function () {
      const args = [];
      for (let i = 0; i < arguments.length; i++) args[i] = arguments[i];
      const json = stringify(args, jsonReplacer);
      if (++calls > maxCalls) { hostBreach('calls'); throw new ErrorCtor('host call limit reached'); }
      if (json.length > maxArgChars) { hostBreach('bytes'); throw new ErrorCtor('host call arguments too large'); }
      const id = calls;
      queue[queued++] = [id, name, json];
      return new PromiseCtor(function (resolve, reject) { waiting[id] = [resolve, reject]; });
    };
  }
  function buildTools(names) {
    const tree = {};
    for (let i = 0; i < names.length; i++) {
      const parts = names[i].split('.');
      let node = tree;
      for (let j = 0; j < parts.length - 1; j++) node = node[parts[j]] || (node[parts[j]] = {});
      node[parts[parts.length - 1]] = makeTool(names[i]);
    }
    (function deepFreeze(o) { for (const k in o) if (typeof o[k] === 'object') deepFreeze(o[k]); freeze(o); })(tree);
    return tree;
  }

  function drain() {
    if (queued === 0) return '';
    const out = stringify(queue);
    queue = create(null);
    queued = 0;
    return out;
  }
  function deliver(batchJson) {
    const batch = parse(batchJson);
    for (let i = 0; i < batch.length; i++) {
      const entry = batch[i], waiter = waiting[entry[0]];
      if (!waiter) continue;
      delete waiting[entry[0]];
      if (entry[1] === 1) waiter[0](entry[2]);
      else waiter[1](new ErrorCtor(entry[2]));
    }
  }

  let started = false;
  function start(code, toolNamesJson, callLimit, argLimit, secretNamesJson) {
    if (started) return;
    started = true;
    maxCalls = callLimit;
    maxArgChars = argLimit;
    defineProperty(globalThis, 'tools', { value: buildTools(parse(toolNamesJson)), writable: true, configurable: true });
    const secretNames = parse(secretNamesJson || '[]');
    if (secretNames.length) {
      const handles = {};
      for (let i = 0; i < secretNames.length; i++) handles[secretNames[i]] = '{{secret:' + secretNames[i] + '}}';
      defineProperty(globalThis, 'secrets', { value: freeze(handles), writable: true, configurable: true });
    }
    let body;
    try {
      body = new AsyncFunction(code);
    } catch (e) {
      settle(false, describe(e));
      return;
    }
    then.call(body(), function (value) {
      let text;
      try {
        text = value === undefined ? 'null' : stringify(value, jsonReplacer);
      } catch (e) {
        settle(false, 'the result is not a JSON value: ' + describe(e));
        return;
      }
      if (typeof text !== 'string') settle(false, 'the result is not a JSON value (got ' + typeof value + ')');
      else settle(true, text);
    }, function (e) {
      settle(false, describe(e));
    });
  }
  return [start, deliver, drain];
})`;
