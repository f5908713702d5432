/* What an epoll entry of dsmd's loop stands for (epoll_event.data.ptr). */
#ifndef DSMD_WATCH_H
#define DSMD_WATCH_H

enum watch_kind { W_XPORT, W_LISTEN, W_TIMER, W_SIGNAL, W_CLIENT, W_UFFD,
		  W_HOLD, W_LOCK };

struct watch {
	enum watch_kind kind;
};

#endif
