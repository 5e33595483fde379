"""服务 (serving)：OpenAI 兼容的 HTTP API 和网页聊天界面，命令 `studygpt serve runs/NAME`。

    schemas.py   请求体与 OpenAI 式错误体（pydantic 校验）
    engine.py    一个工人线程 + 先来先服务队列：生成、取消、stop 字符串；batcher.py 连续批处理
    app.py       FastAPI 路由、SSE 流式输出、API key、启动服务器（ServeSettings、create_app、run_server）
    static/      网页：index.html + chat.js + style.css，不需要构建，不从网上加载任何东西
"""
