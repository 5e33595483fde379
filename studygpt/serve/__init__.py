"""服务 (serving)：OpenAI 兼容的 HTTP API 和网页聊天界面，命令 `studygpt serve runs/NAME`。

    schemas.py   请求体与 OpenAI 式错误体（pydantic 校验）
    messages.py  OpenAI 的消息（含 tools、role=tool）→ 本项目的对话轮次与 Reply；工具调用的两种写法
    engine.py    一个工人线程 + 先来先服务队列：生成、取消、stop 字符串、先调用工具再回答 (Answer)；batcher.py 连续批处理
    app.py       FastAPI 路由、SSE 流式输出、API key、启动服务器（ServeSettings、create_app、run_server）
    static/      网页：index.html + chat.js + style.css，不需要构建，不从网上加载任何东西
"""
