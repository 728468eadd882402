// Switchboard chat widget: put
//   <script src="https://contact-center.example.com/chat/widget.js" async></script>
// on any page to get a "Chat with us" button that opens the daemon's /chat page in a frame.
// The frame keeps the chat's scripts and styles away from the host page, and the chat's
// websocket goes to the daemon that served this script, wherever the page itself lives.
(() => {
  'use strict';
  const script = document.currentScript;
  const origin = script ? new URL(script.src).origin : location.origin;
  if (document.getElementById('switchboard-chat-launcher')) return;

  const frame = document.createElement('iframe');
  frame.id = 'switchboard-chat-frame';
  frame.title = 'Chat with us';
  frame.src = `${origin}/chat?embedded=1`;
  frame.hidden = true;
  Object.assign(frame.style, {
    position: 'fixed', right: '16px', bottom: '72px', width: '380px', height: '560px',
    maxHeight: 'calc(100vh - 96px)', border: '1px solid #d0d7de', borderRadius: '8px',
    boxShadow: '0 8px 24px rgba(0,0,0,.2)', background: '#fff', zIndex: '2147483646',
  });

  const button = document.createElement('button');
  button.id = 'switchboard-chat-launcher';
  button.type = 'button';
  button.textContent = 'Chat with us';
  button.setAttribute('aria-controls', frame.id);
  button.setAttribute('aria-expanded', 'false');
  Object.assign(button.style, {
    position: 'fixed', right: '16px', bottom: '16px', padding: '12px 18px',
    font: '600 16px system-ui, sans-serif', color: '#fff', background: '#0b5cad',
    border: 'none', borderRadius: '999px', cursor: 'pointer', zIndex: '2147483647',
  });
  button.addEventListener('click', () => {
    frame.hidden = !frame.hidden;
    button.setAttribute('aria-expanded', String(!frame.hidden));
    button.textContent = frame.hidden ? 'Chat with us' : 'Close chat';
    if (!frame.hidden) frame.focus();
  });

  const mount = () => document.body.append(frame, button);
  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount);
})();
