/* The calendar's agenda (core/apps/calendar/agenda_web.py): EventCalendar (vendored) with
   the reader's events, busy blocks and holidays from /calendar/events.json; drag and resize
   post to /calendar/events/move (CSRF) and a refused move goes back with the server's
   message; click-drag opens the choice of what to create, then the kind's quick create
   prefilled with the chosen times. Times are the reader's wall clock (events.py). */
(function () {
  "use strict";
  const el = document.getElementById("agenda");
  if (!el || typeof EventCalendar === "undefined") return;
  const config = JSON.parse(el.dataset.config);
  const texts = config.texts;
  const message = document.querySelector(".agenda-message");
  const phone = window.matchMedia("(max-width: 700px)").matches;
  const pad = (n) => String(n).padStart(2, "0");
  const sign = config.offset < 0 ? "-" : "+";
  const zone = sign + pad(Math.floor(Math.abs(config.offset) / 60)) + ":" + pad(Math.abs(config.offset) % 60);

  // a Date of the component -> the reader's wall clock "YYYY-MM-DDTHH:MM"
  function wall(date) {
    const d = new Date(date.getTime() + config.offset * 60000);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) +
      "T" + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }

  function say(text, kind) {
    if (!message) return;
    message.textContent = text;
    message.className = "flash agenda-message " + (kind || "");
    message.hidden = !text;
  }

  async function save(info) {
    const event = info.event;
    const props = event.extendedProps || {};
    if (info.newResource) {  // another person's (resource's) column: not a move of time
      info.revert();
      say(config.of ? texts.otherResource : texts.otherUser, "error");
      return;
    }
    const body = new URLSearchParams({
      _csrf: el.dataset.csrf, module: props.module, id: props.record,
      start: wall(event.start), end: event.end ? wall(event.end) : "",
      all_day: event.allDay ? "1" : "0", version: props.version == null ? "" : props.version,
    });
    say(texts.saving, "");
    try {
      const response = await fetch(config.move, {
        method: "POST", body, credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": el.dataset.csrf },
      });
      const answer = await response.json().catch(() => ({ ok: false, error: texts.failed }));
      if (!response.ok || !answer.ok) {
        info.revert();
        say(answer.error || texts.failed, "error");
        return;
      }
      props.version = answer.version;
      say(texts.moved, "ok");
    } catch (error) {
      info.revert();
      say(texts.failed, "error");
    }
  }

  const dialog = document.querySelector(".agenda-create");
  function create(info) {
    if (!dialog || !config.create.length) return;
    const when = dialog.querySelector(".agenda-create-when");
    const start = info.allDay ? info.startStr.slice(0, 10) + "T09:00" : wall(info.start);
    const endDate = info.allDay ? new Date(info.end.getTime() - 86400000) : info.end;
    const end = info.allDay ? wall(endDate).slice(0, 10) + "T10:00" : wall(info.end);
    when.textContent = start.replace("T", " ") + " – " + end.replace("T", " ");
    const assignee = info.resource && !config.of ? info.resource.id : "";
    dialog.querySelectorAll("a[data-module]").forEach((link) => {
      const kind = config.create.find((k) => k.module === link.dataset.module);
      const params = new URLSearchParams({ _layout: "quick", return: location.pathname + location.search });
      params.set(kind.start, start);
      if (kind.end) params.set(kind.end, end);
      else if (kind.duration && !info.allDay) {
        params.set(kind.duration, String(Math.round((info.end - info.start) / 60000)));
      }
      if (kind.all_day && info.allDay) params.set(kind.all_day, "1");
      if (assignee) params.set("assigned_user_id", assignee);
      link.href = "/m/" + kind.module + "/new?" + params.toString();
    });
    if (typeof dialog.showModal === "function") dialog.showModal();
    dialog.querySelector("a[data-module]").focus();
  }

  const resourceViews = config.company;
  const calendar = EventCalendar.create(el, {
    ...(config.date ? { date: config.date } : {}),
    view: resourceViews ? (phone ? "resourceTimeGridDay" : "resourceTimeGridWeek")
      : (phone ? "listWeek" : "timeGridWeek"),
    headerToolbar: {
      start: "prev,next today", center: "title",
      end: resourceViews ? "resourceTimeGridDay,resourceTimeGridWeek"
        : "listWeek,timeGridDay,timeGridWeek,dayGridMonth",
    },
    buttonText: {
      today: texts.today, dayGridMonth: texts.month, listWeek: texts.list, listDay: texts.list,
      timeGridDay: texts.day, timeGridWeek: texts.week,
      resourceTimeGridDay: texts.day, resourceTimeGridWeek: texts.week,
    },
    locale: config.locale,
    timeZone: zone,
    firstDay: config.firstDay,
    slotMinTime: config.slotMinTime,
    slotMaxTime: config.slotMaxTime,
    flexibleSlotTimeLimits: true,
    scrollTime: config.slotMinTime,
    height: "auto",  // the work day fits; earlier or later events stretch it
    ...(phone ? { slotLabelFormat: { hour: "numeric" } } : {}),  // "9 AM": a narrow hour column
    ...(phone ? { views: {  // seven columns in 375px: "T 29", and "T" above a month
      timeGridWeek: { dayHeaderFormat: { weekday: "narrow", day: "numeric" } },
      dayGridMonth: { dayHeaderFormat: { weekday: "narrow" } },
    } } : {}),
    // Svelte aborts a fetch when the view changes; a lazy calendar then never asks again
    // for the same week, and a quick switch from List to Week would show no events.
    lazyFetching: false,
    nowIndicator: true,
    dayMaxEvents: true,
    editable: true,
    selectable: true,
    allDayContent: texts.allDay,
    noEventsContent: texts.noEvents,
    resources: config.resources,
    eventSources: [{
      url: config.events,
      extraParams: resourceViews ? { users: config.users || "-", resources: "1",
        ...(config.of ? { of: config.of } : {}) } : {},
    }],
    eventClick(info) {
      const url = info.event.extendedProps && info.event.extendedProps.url;
      if (url) location.href = url;
    },
    eventDidMount(info) {
      const props = info.event.extendedProps || {};
      if (props.kind) info.el.title = props.kind + ": " + info.event.title;
      if (props.url) info.el.dataset.record = props.record;
    },
    eventDrop: save,
    eventResize: save,
    select(info) {
      create(info);
      calendar.unselect();
    },
  });
  el.calendar = calendar;  // for the browser tests and the curious
})();
