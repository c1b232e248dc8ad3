"""Images, depth maps, frame folders, video files and atomic output writing."""
