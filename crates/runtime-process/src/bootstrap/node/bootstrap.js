// Arcus built-in Node.js runtime client: runs `_HANDLER` (`file.export`) against the AWS
// Lambda Runtime API (2018-06-01) at AWS_LAMBDA_RUNTIME_API, as Lambda's Node runtime
// does: async (promise) and callback handlers, `context` with Lambda's names, errors as
// `{errorType, errorMessage, trace}`. No npm dependencies.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');

const [HOST, PORT] = (process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001').split(':');
const BASE = '/2018-06-01/runtime';
const TASK_ROOT = process.env.LAMBDA_TASK_ROOT || '/var/task';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, p, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port: PORT, method, path: BASE + p, agent, headers: headers || {} },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
    req.on('error', reject);
    req.end(body);
  });
}

async function post(p, body, errorType) {
  const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
  if (errorType) headers['Lambda-Runtime-Function-Error-Type'] = errorType;
  const res = await request('POST', p, body, headers);
  if (res.status >= 300) {
    console.error(`[ERROR] runtime API ${p} answered ${res.status}: ${res.body.toString().slice(0, 500)}`);
  }
}

function toDoc(err, fallbackType) {
  if (err instanceof Error) {
    return {
      errorType: err.name || fallbackType || 'Error',
      errorMessage: err.message,
      trace: typeof err.stack === 'string' ? err.stack.split('\n') : [],
    };
  }
  let message;
  try { message = typeof err === 'string' ? err : JSON.stringify(err); } catch (_) { message = String(err); }
  return { errorType: fallbackType || 'string', errorMessage: message, trace: [] };
}

async function initError(errorType, err) {
  const doc = toDoc(err, errorType);
  doc.errorType = errorType;
  if (err instanceof Error) doc.errorMessage = `${err.name}: ${err.message}`;
  console.error(`[ERROR] ${errorType}: ${doc.errorMessage}`);
  try { await post('/init/error', JSON.stringify(doc), errorType); } finally { process.exit(1); }
}

function isModulePackage(dir) {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      return JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8')).type === 'module';
    } catch (_) { /* no or bad package.json here: look further up */ }
    if (d === path.dirname(d) || d === path.dirname(TASK_ROOT)) return false;
  }
}

async function loadHandler(handler) {
  const slash = handler.lastIndexOf('/');
  const dot = handler.indexOf('.', slash + 1);
  if (dot <= slash + 1 || dot === handler.length - 1) {
    return initError('Runtime.MalformedHandlerName', new Error(`Bad handler ${handler}`));
  }
  const modPath = handler.slice(0, dot);
  const exportPath = handler.slice(dot + 1).split('.');
  const base = path.resolve(TASK_ROOT, modPath);
  const file = ['.js', '.mjs', '.cjs'].map((e) => base + e).find((f) => fs.existsSync(f));
  let mod;
  try {
    if (!file) {
      mod = require(require.resolve(modPath, { paths: [TASK_ROOT] }));
    } else if (file.endsWith('.mjs') || (file.endsWith('.js') && isModulePackage(path.dirname(file)))) {
      mod = await import(pathToFileURL(file).href);
    } else {
      try {
        mod = require(file);
      } catch (e) {
        if (e && e.code === 'ERR_REQUIRE_ESM') mod = await import(pathToFileURL(file).href);
        else throw e;
      }
    }
  } catch (e) {
    if (e instanceof SyntaxError) return initError('Runtime.UserCodeSyntaxError', e);
    if (e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND')) {
      return initError('Runtime.ImportModuleError', e);
    }
    return initError(e && e.name ? e.name : 'Runtime.UnknownError', e);
  }
  let fn = mod;
  for (const part of exportPath) fn = fn == null ? undefined : fn[part];
  if (fn === undefined && mod && mod.default) {
    fn = mod.default;
    for (const part of exportPath) fn = fn == null ? undefined : fn[part];
  }
  if (typeof fn !== 'function') {
    return initError('Runtime.HandlerNotFound', new Error(`${handler} is undefined or not exported`));
  }
  return fn;
}

function makeContext(id, headers, settle) {
  const env = process.env;
  const deadline = Number(headers['lambda-runtime-deadline-ms'] || 0);
  const parse = (h) => { try { return h ? JSON.parse(h) : undefined; } catch (_) { return undefined; } };
  const ctx = {
    awsRequestId: id,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parse(headers['lambda-runtime-client-context']),
    identity: parse(headers['lambda-runtime-cognito-identity']),
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    done: (err, result) => settle(err, result),
    succeed: (result) => settle(null, result),
    fail: (err) => settle(err == null ? new Error('handled') : err),
  };
  return ctx;
}

let current = null; // request id of the running invocation

async function invoke(fn, res) {
  const id = res.headers['lambda-runtime-aws-request-id'];
  const trace = res.headers['lambda-runtime-trace-id'];
  if (trace) process.env._X_AMZN_TRACE_ID = trace; else delete process.env._X_AMZN_TRACE_ID;
  current = id;
  let settled = false;
  let resolveOutcome;
  const outcome = new Promise((r) => { resolveOutcome = r; });
  const settle = (err, result) => {
    if (settled) return;
    settled = true;
    resolveOutcome({ err, result });
  };
  const ctx = makeContext(id, res.headers, settle);
  let event;
  try {
    event = res.body.length ? JSON.parse(res.body.toString('utf8')) : null;
    const ret = fn.length >= 3 ? fn(event, ctx, settle) : fn(event, ctx);
    if (ret && typeof ret.then === 'function') ret.then((r) => settle(null, r), (e) => settle(e == null ? new Error('rejected') : e));
    else if (fn.length < 3 && ret !== undefined) settle(null, ret);
    // A plain handler that returned nothing may still answer through context.done().
    else if (fn.length < 3) setImmediate(() => settle(null, null));
  } catch (e) {
    settle(e);
  }
  const { err, result } = await outcome;
  current = null;
  return answer(id, err, result);
}

// Prints the end mark of invocation `id` on stdout and stderr (synchronous for pipes on
// Linux), so the node knows it has read every line the invocation printed.
function end(id) {
  const mark = `\x1earcus-end ${id}\x1e\n`;
  for (const stream of [process.stdout, process.stderr]) {
    try { stream.write(mark); } catch (e) { /* a closed stream: the node waits a moment */ }
  }
}

async function answer(id, err, result) {
  if (err != null) {
    const doc = toDoc(err);
    console.error(`${new Date().toISOString()}\t${id}\tERROR\tInvoke Error \t${JSON.stringify(doc)}`);
    end(id);
    return post(`/invocation/${id}/error`, JSON.stringify(doc), 'Unhandled');
  }
  let body;
  try {
    body = result === undefined ? 'null' : JSON.stringify(result);
  } catch (e) {
    const doc = { errorType: 'Runtime.MarshalError', errorMessage: `Unable to stringify response body: ${e.message}`, trace: [] };
    end(id);
    return post(`/invocation/${id}/error`, JSON.stringify(doc), 'Unhandled');
  }
  end(id);
  return post(`/invocation/${id}/response`, body === undefined ? 'null' : body);
}

async function crash(errorType, err) {
  const doc = toDoc(err, errorType);
  doc.errorType = errorType;
  console.error(`[ERROR] ${errorType}: ${doc.errorMessage}`);
  try {
    if (current) {
      end(current);
      await post(`/invocation/${current}/error`, JSON.stringify(doc), 'Unhandled');
    }
  } finally {
    process.exit(128);
  }
}

process.on('unhandledRejection', (reason) => crash('Runtime.UnhandledPromiseRejection', reason));
process.on('uncaughtException', (err) => crash(err && err.name ? err.name : 'Error', err));

// A spare runtime (ARCUS_SPARE=1) starts before its function is known: it waits for the
// node to hand over the function's environment, then starts as any runtime does.
async function assigned() {
  if (process.env.ARCUS_SPARE !== '1') return;
  const res = await request('GET', '/arcus/assignment');
  if (res.status !== 200) throw new Error(`runtime API assignment answered ${res.status}`);
  const env = JSON.parse(res.body.toString());
  for (const k of Object.keys(process.env)) delete process.env[k];
  Object.assign(process.env, env);
}

async function main() {
  await assigned();
  const fn = await loadHandler(process.env._HANDLER || '');
  end('init'); // what the module printed while loading is start-up output
  for (;;) {
    const res = await request('GET', '/invocation/next');
    if (res.status !== 200) {
      console.error(`[ERROR] runtime API next answered ${res.status}`);
      process.exit(1);
    }
    await invoke(fn, res);
  }
}

main().catch((e) => {
  console.error(`[ERROR] runtime client failed: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
