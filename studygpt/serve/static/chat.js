// 学习GPT 网页聊天：多轮对话、流式回答 (fetch + ReadableStream 解析 SSE)、"看看里面" (look inside)。
// 所有状态都在这个文件的几个变量里：conversation 是发给服务器的消息列表，controller 用来中途停止。
"use strict";

const $ = (id) => document.getElementById(id);
const SLIDERS = ["temperature", "top-k", "top-p", "repetition-penalty", "max-tokens"];
const TOP_N = 5; // "看看里面" 显示的候选数 (top_logprobs)

let conversation = [];       // [{role: "user" | "assistant", content}]，新对话时清空
let controller = null;  // 正在生成时的 AbortController；点"停止"会断开连接，服务器随之停止生成

// ===== 1. 设置面板 =====
function showSliderValues() {
  for (const id of SLIDERS) {
    const value = Number($(id).value);
    $(`${id}-value`).textContent = id === "top-k" && value === 0 ? "不限 (off)" : String(value);
  }
}

function authHeaders() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** 当前设置 → 请求体里的采样参数（OpenAI 的名字；top_k、repetition_penalty 是本项目的扩展）。 */
function samplingParams() {
  const params = {
    temperature: Number($("temperature").value),
    top_p: Number($("top-p").value),
    repetition_penalty: Number($("repetition-penalty").value),
    max_tokens: Number($("max-tokens").value),
    top_k: Number($("top-k").value) || null, // 0 = 不限
    logprobs: true,        // 总是要候选：切换"看看里面"时，已有的回答也能立刻看到
    top_logprobs: TOP_N,
  };
  const seed = $("seed").value.trim();
  if (seed !== "") params.seed = Number(seed);
  return params;
}

async function loadModelInfo() {
  try {
    const res = await fetch("v1/models", { headers: authHeaders() });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error ? body.error.message : res.statusText);
    const model = body.data[0];
    $("model").textContent = `模型 (model): ${model.id} · 上下文 ${model.max_len} 个词元`;
    $("max-tokens").max = model.max_tokens_cap;
    if (Number($("max-tokens").value) > model.max_tokens_cap) $("max-tokens").value = model.max_tokens_cap;
    showSliderValues();
  } catch (err) {
    $("model").textContent = `模型信息读取失败：${err.message}`;
  }
}

// ===== 2. 显示消息 =====
/** 让看不见的字符看得见：空格 ␣、换行 ↵、制表符 ⇥。 */
function showToken(token) {
  return token.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "⇥");
}

function addMessage(role, text) {
  $("welcome")?.remove();
  const msg = document.createElement("div");
  msg.className = `msg ${role}`;
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  bubble.textContent = text;
  msg.append(bubble);
  if (role === "assistant") {
    const folds = document.createElement("div"); // 草稿与工具调用：折叠在回答上面（见 fold）
    folds.className = "folds";
    const meta = document.createElement("div");
    meta.className = "meta";
    const inside = document.createElement("div");
    inside.className = "inside";
    bubble.before(folds);
    msg.append(meta, inside);
  }
  $("messages").append(msg);
  msg.scrollIntoView({ block: "end" });
  return msg;
}

/**
 * 回答上面的一个折叠块 (<details>，默认关着，点标题展开)：kind 是 "reasoning"（草稿，<think> 里写的）
 * 或 "tool"（工具调用与结果）。还没有就新建；返回放文字的 <pre>。
 */
function fold(msg, kind, title) {
  let details = msg.querySelector(`details.${kind}`);
  if (!details) {
    details = document.createElement("details");
    details.className = `fold ${kind}`;
    const summary = document.createElement("summary");
    summary.textContent = title;
    details.append(summary, document.createElement("pre"));
    msg.querySelector(".folds").append(details);
  }
  return details.querySelector("pre");
}

/** 服务器自己执行了的工具调用 (server_tool_calls)：调用写了什么、工具答了什么。 */
function showToolCall(msg, call) {
  const name = call.function.name || "?";
  fold(msg, "tool", `调用工具 (tool call)：${name}`).textContent =
    `调用 (call)：${name} ${call.function.arguments}\n结果 (result)：${call.output}`;
}

/** 对数概率 (logprob) → "12.3%"。 */
function percent(logprob) {
  return `${(Math.exp(logprob) * 100).toFixed(1)}%`;
}

/** "看看里面"：一步一张卡片，列出前 5 个候选和概率条；被选中的加粗。 */
function addStepCard(msg, stepNo, entry) {
  const card = document.createElement("div");
  card.className = "step";
  const title = document.createElement("div");
  title.className = "step-title";
  // 选中的字不一定在前 5 名里（抽样时概率小的也可能被抽到），所以标题里写出它自己的概率
  title.textContent = `第 ${stepNo} 步 · 选中 ${showToken(entry.token)} ${percent(entry.logprob)}`;
  card.append(title);
  for (const cand of entry.top_logprobs) {
    const row = document.createElement("div");
    row.className = cand.token === entry.token ? "cand chosen" : "cand";
    const token = document.createElement("span");
    token.className = "tok";
    token.textContent = showToken(cand.token);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = percent(cand.logprob);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = percent(cand.logprob);
    const track = document.createElement("span");
    track.className = "track";
    track.append(bar);
    row.append(token, track, pct);
    card.append(row);
  }
  msg.querySelector(".inside").append(card);
}

// ===== 3. 读 server-sent events =====
/** 从响应体一块块读字节，按空行切成事件，对每个 `data: {...}` 调用 onData；遇到 [DONE] 结束。 */
async function readEvents(body, onData) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }); // stream: true —— 一个汉字的字节可能被切在两块里
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onData(JSON.parse(data));
      }
    }
  }
}

// ===== 4. 发送一轮 =====
async function send(text) {
  const turns = conversation; // "新对话"会换一个新数组：这一轮迟到的结果只会写进旧的对话
  addMessage("user", text);
  turns.push({ role: "user", content: text });
  const msg = addMessage("assistant", "");
  msg.dataset.state = "streaming";
  const bubble = msg.querySelector(".bubble");
  let reply = "", reasoning = "";
  let steps = 0;
  controller = new AbortController();
  setBusy(true);
  try {
    const res = await fetch("v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({
        model: "studygpt", messages: turns, stream: true,
        stream_options: { include_usage: true }, ...samplingParams(),
      }),
      signal: controller.signal,
    });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      throw new Error(body.error ? body.error.message : `HTTP ${res.status}`);
    }
    let finish = "", usage = null;
    await readEvents(res.body, (data) => {
      if (data.error) throw new Error(data.error.message);
      if (data.usage) usage = data.usage;
      const choice = data.choices[0];
      if (!choice) return;
      const delta = choice.delta;
      if (delta.reasoning_content) { // 会思考的模型：草稿在 reasoning_content 里，和正文分开
        reasoning += delta.reasoning_content;
        fold(msg, "reasoning", "思考过程 (reasoning)").textContent = reasoning;
      }
      for (const call of delta.server_tool_calls ?? []) showToolCall(msg, call);
      if (delta.content) {
        reply += delta.content;
        bubble.textContent = reply;
      }
      for (const entry of choice.logprobs?.content ?? []) addStepCard(msg, ++steps, entry);
      if (choice.finish_reason) finish = choice.finish_reason;
      msg.scrollIntoView({ block: "end" });
    });
    const why = { stop: "模型写完了 (stop)", length: "到了词元上限 (length)" }[finish] ?? finish;
    msg.querySelector(".meta").textContent =
      `${why}${usage ? ` · 提示 ${usage.prompt_tokens} + 回答 ${usage.completion_tokens} 个词元` : ""}`;
    turns.push({ role: "assistant", content: reply }); // 历史只留正文：写完的轮次，服务器本来也不看草稿
  } catch (err) {
    if (err.name === "AbortError") {
      msg.querySelector(".meta").textContent = "（已停止 (stopped)）";
      turns.push({ role: "assistant", content: reply }); // 停下的半句也算这一轮的回答
    } else {
      msg.classList.add("error");
      bubble.textContent = `出错了 (error)：${err.message}`;
      turns.pop(); // 这一问没有回答：从历史里拿掉，保持用户、助手交替
    }
  } finally {
    msg.dataset.state = "done";
    controller = null;
    setBusy(false);
  }
}

function setBusy(busy) {
  $("send").textContent = busy ? "停止 (stop)" : "发送 (send)";
  $("send").classList.toggle("busy", busy);
}

// ===== 5. 事件 =====
$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  if (controller) { controller.abort(); return; } // 正在生成：这个按钮是"停止"
  const text = $("input").value.trim();
  if (!text) return;
  $("input").value = "";
  send(text);
});

$("input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { // isComposing：输入法还在选字
    event.preventDefault();
    $("composer").requestSubmit();
  }
});

$("new-chat").addEventListener("click", () => {
  if (controller) controller.abort();
  conversation = [];
  $("messages").replaceChildren();
});

$("inspect").addEventListener("change", () => {
  document.body.classList.toggle("inspect", $("inspect").checked);
});

$("api-key").addEventListener("change", loadModelInfo);
for (const id of SLIDERS) $(id).addEventListener("input", showSliderValues);
showSliderValues();
loadModelInfo();
